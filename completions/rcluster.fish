complete --keep-order --exclusive --command rcluster --arguments "(RCLUSTER_COMPLETE=fish rcluster -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
