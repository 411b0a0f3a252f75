# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_rcluster_global_optspecs
    string join \n v/verbose no-color s/silent h/help V/version
end

function __fish_rcluster_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_rcluster_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_rcluster_using_subcommand
    set -l cmd (__fish_rcluster_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c rcluster -n "__fish_rcluster_needs_command" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_needs_command" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_needs_command" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_needs_command" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_needs_command" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "start" -d 'Start a program, a script, a quoted command line, as N instances (or a known app again: its name, an id, `all`)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "run" -d 'Run apps in the foreground without a daemon (pm2-runtime, for containers): output to stdout/stderr, SIGTERM/SIGINT stop them, exits when all have ended'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "serve" -d 'Serve a folder\'s files over HTTP as an app (pm2\'s serve): `serve dist 3000 --spa`'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "list" -d 'List every instance (a table, or JSON for scripts)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "ls" -d 'List every instance (a table, or JSON for scripts)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "ps" -d 'List every instance (a table, or JSON for scripts)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "status" -d 'List every instance (a table, or JSON for scripts)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "jlist" -d 'The same as `list --json` (pm2\'s jlist)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "prettylist" -d '`list --json`, indented (pm2\'s prettylist)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "monit" -d 'A live dashboard: instances with CPU and memory, the selected app\'s logs and details; keys to restart, reload, stop and filter; q quits (a table per refresh into a pipe)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "describe" -d 'Show everything about an app'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "desc" -d 'Show everything about an app'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "info" -d 'Show everything about an app'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "show" -d 'Show everything about an app'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "stop" -d 'Stop instances (the stop signal, then SIGKILL after kill_timeout)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "restart" -d 'Stop then start instances again (with an ecosystem file, its new definitions, and its apps that do not run are started: pm2\'s startOrRestart)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "startOrRestart" -d 'Stop then start instances again (with an ecosystem file, its new definitions, and its apps that do not run are started: pm2\'s startOrRestart)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "delete" -d 'Stop instances and forget them'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "del" -d 'Stop instances and forget them'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "reload" -d 'Replace instances one at a time with zero downtime (new one ready, then the old one drained); with an ecosystem file, its apps that do not run are started (pm2\'s startOrReload)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "startOrReload" -d 'Replace instances one at a time with zero downtime (new one ready, then the old one drained); with an ecosystem file, its apps that do not run are started (pm2\'s startOrReload)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "startOrGracefulReload" -d 'Replace instances one at a time with zero downtime (new one ready, then the old one drained); with an ecosystem file, its apps that do not run are started (pm2\'s startOrReload)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "scale" -d 'Set the number of instances of an app: N, +N or -N (removals drain like a reload)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "save" -d 'Save the process list, to be restored by `resurrect` (and at boot, see `startup`)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "dump" -d 'Save the process list, to be restored by `resurrect` (and at boot, see `startup`)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "resurrect" -d 'Start the saved apps that do not run'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "cleardump" -d 'Empty the saved process list (the previous one is kept as dump.pm2.bak)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "flush" -d 'Empty the log files of apps'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "reloadLogs" -d 'Reopen every log file (after an external logrotate moved them)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "reload-logs" -d 'Reopen every log file (after an external logrotate moved them)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "signal" -d 'Send a signal to the main process of running instances (pm2\'s sendSignal)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "sendSignal" -d 'Send a signal to the main process of running instances (pm2\'s sendSignal)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "send-signal" -d 'Send a signal to the main process of running instances (pm2\'s sendSignal)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "reset" -d 'Set the restart counts of instances back to 0'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "pid" -d 'Print the pids of running instances, one per line'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "id" -d 'Print the ids of an app\'s instances (pm2\'s id: `[ 0, 1 ]`)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "env" -d 'Print the environment a running instance\'s program started with (pm2\'s env)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "logs" -d 'Show the last lines of app logs, then follow live lines until Ctrl-C (--nostream: exit)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "ping" -d 'Check that the daemon answers (it is started if needed)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "kill" -d 'Stop every app and the daemon'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "update" -d 'Replace the running daemon by this rcluster binary, keeping every app, pid and socket'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "completions" -d 'Print shell completions'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "ecosystem" -d 'Write a commented example ecosystem file (ecosystem.yaml)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "init" -d 'Write a commented example ecosystem file (ecosystem.yaml)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "startup" -d 'Print (or install) a systemd unit that starts rcluster at boot and resurrects the saved apps'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "unstartup" -d 'Remove the systemd unit installed by `startup --install`'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "import" -d 'Start the apps another process manager saved (pm2\'s `pm2 save` list)'
complete -c rcluster -n "__fish_rcluster_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s n -l name -d 'App name (default: the script\'s name without extension)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l namespace -d 'pm2\'s namespace: a group that targets may name (`restart <namespace>`)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s i -l instances -d 'Number of instances: N, `max` (all CPUs available to rcluster) or -1 (max minus one)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l cwd -d 'Working directory (default: the current one)' -r -F
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l env-var -d 'An environment variable for the app (repeatable)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l interpreter -d 'Interpreter for the script (default: chosen by extension, as pm2 does; `none` runs it as is)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l interpreter-args -l node-args -d 'Arguments for the interpreter, before the script (`--node-args="--max-old-space-size=4096"`)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l max-restarts -d 'Unstable restarts in a row (each up less than min-uptime) before `errored`' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l min-uptime -d 'A run shorter than this counts as unstable (e.g. 1000, 1s)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l restart-delay -d 'Wait this long before each restart' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l exp-backoff-restart-delay -d 'Exponential backoff between restarts, starting at this delay (x1.5, capped at 15 s)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l stop-exit-codes -d 'Exit codes that mean "done": no restart (comma separated)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l kill-signal -d 'Signal sent to the instance\'s process group on stop (default SIGINT, as pm2)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s k -l kill-timeout -d 'Time between the stop signal and SIGKILL (default 1600 ms)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l max-memory-restart -d 'Reload an instance gracefully when its memory exceeds this size (e.g. 300M, 1G)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s c -l cron-restart -l cron -d 'Restart the app on a cron schedule, in local time ("0 3 * * *", "*/30 * * * * *", "@hourly"; 0 = off); also starts it again if it had ended by itself' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l watch -d 'Restart the app when a file changes under its cwd, or under PATH (--watch=PATH, repeatable); hidden files and node_modules are ignored unless --ignore-watch is given. (`--watch src` after the script, as in pm2; `--watch=src` anywhere.)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l ignore-watch -d 'With --watch: leave these alone (names, globs such as *.log, or relative paths; repeatable, or several in one value separated by spaces)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l ext -d 'With --watch: only files with these extensions count (pm2\'s --ext: `js,json`)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l watch-delay -d 'With --watch: wait this long after a change before restarting (e.g. 500ms, 1s; at least 100ms, so that one save is one restart)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l instance-var -d 'Name of the variable carrying the instance index (default NODE_APP_INSTANCE)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l log-date-format -d 'Timestamp format for log lines (implies --time): moment tokens like `YYYY-MM-DD HH:mm:ss.SSS Z`, or strftime like `%F %T`' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l log-type -d '`json`: write each log line as a JSON object (timestamp, app, id, instance, stream, message)' -r -f -a "json\t''"
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l log-max-size -d 'Rotate a log file before it grows past this size (e.g. 10M)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l log-retain -d 'Rotated files kept per log file (default 10 when rotation is on)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l pid -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l filter-env -d 'Leave out the variables of this shell whose names contain NAME (repeatable; pm2\'s --filter-env): the app does not see them, and `save` does not keep them' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l uid -d 'pm2\'s uid/gid: refused with the reason (run rcluster as that user)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l gid -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s o -l output -d 'File for standard output (`/dev/null` discards)' -r -F
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s e -l error -d 'File for standard error (`/dev/null` discards)' -r -F
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s l -l log -d 'File for both streams combined' -r -F
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s p -l port -d 'Cluster mode: the daemon listens on this port (0.0.0.0:PORT) and shares it with every instance (repeatable). Port 0 picks a free port' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l listen -d 'Cluster mode: an address to listen on: `127.0.0.1:8000`, `[::]:8000`, `unix:/path` (repeatable)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l exec-mode -d 'fork: instances do not share ports; cluster (the default with -i N > 1): every TCP port the program binds is shared, as pm2\'s cluster mode does, with no --port needed' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l private-port -d 'A port the program binds that stays each instance\'s own in cluster mode (repeatable)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l balance -d 'How connections reach instances: round-robin (default), shared, reuseport, proxy, least-conn' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l listen-timeout -d 'How long an instance may take to listen before it is reported (default 3000 ms)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l only -d 'Ecosystem file: only these apps (comma separated)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l env -d 'Ecosystem file: merge `env_<PROFILE>` over each app\'s `env` (app names may depend on it)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l no-autorestart -d 'Do not restart instances when they exit'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l no-autostart -d 'Add the app stopped: `rcluster start <name>` starts it later (pm2\'s --no-autostart)'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l wait-ready -d 'Ready only when the program says so: READY=1 on $NOTIFY_SOCKET (sd_notify) or Node\'s process.send(\'ready\'), as pm2\'s wait_ready'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l time -d 'Prefix every log line with a timestamp (pm2\'s format, `YYYY-MM-DDTHH:mm:ss`, local time)'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l log-compress -d 'gzip rotated log files'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l log-rotate-daily -d 'Also rotate log files at the first write after local midnight'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l no-merge-logs -d 'One log file per instance (`<name>-out-<i>.log`): the default with -i or --exec-mode cluster, as in pm2'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l merge-logs -d 'One log file per app for all its instances (pm2\'s --merge-logs)'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s f -l force
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l no-vizion
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l no-pmx
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l no-automation
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l no-treekill
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l disable-trace
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l source-map-support
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l disable-source-map-support
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l shutdown-with-message
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s x -l execute-command
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l trace
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l v8
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l event-loop-inspector
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l deep-monitoring
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l disable-logs -d 'Discard the app\'s output (both log files /dev/null)'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l attach -d 'After starting, follow the app\'s logs until Ctrl-C (pm2\'s --attach)'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s a -l update-env -d 'When `start` names a known app (which restarts it): give it this shell\'s environment'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l no-daemon -d 'Run in the foreground without a daemon, as `rcluster run` (pm2\'s --no-daemon, the container form: `CMD rcluster start app.js --no-daemon`)'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -l json -d 'Print the started instances as JSON'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand start" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s n -l name -d 'App name (default: the script\'s name without extension)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l namespace -d 'pm2\'s namespace: a group that targets may name (`restart <namespace>`)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s i -l instances -d 'Number of instances: N, `max` (all CPUs available to rcluster) or -1 (max minus one)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l cwd -d 'Working directory (default: the current one)' -r -F
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l env-var -d 'An environment variable for the app (repeatable)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l interpreter -d 'Interpreter for the script (default: chosen by extension, as pm2 does; `none` runs it as is)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l interpreter-args -l node-args -d 'Arguments for the interpreter, before the script (`--node-args="--max-old-space-size=4096"`)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l max-restarts -d 'Unstable restarts in a row (each up less than min-uptime) before `errored`' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l min-uptime -d 'A run shorter than this counts as unstable (e.g. 1000, 1s)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l restart-delay -d 'Wait this long before each restart' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l exp-backoff-restart-delay -d 'Exponential backoff between restarts, starting at this delay (x1.5, capped at 15 s)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l stop-exit-codes -d 'Exit codes that mean "done": no restart (comma separated)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l kill-signal -d 'Signal sent to the instance\'s process group on stop (default SIGINT, as pm2)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s k -l kill-timeout -d 'Time between the stop signal and SIGKILL (default 1600 ms)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l max-memory-restart -d 'Reload an instance gracefully when its memory exceeds this size (e.g. 300M, 1G)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s c -l cron-restart -l cron -d 'Restart the app on a cron schedule, in local time ("0 3 * * *", "*/30 * * * * *", "@hourly"; 0 = off); also starts it again if it had ended by itself' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l watch -d 'Restart the app when a file changes under its cwd, or under PATH (--watch=PATH, repeatable); hidden files and node_modules are ignored unless --ignore-watch is given. (`--watch src` after the script, as in pm2; `--watch=src` anywhere.)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l ignore-watch -d 'With --watch: leave these alone (names, globs such as *.log, or relative paths; repeatable, or several in one value separated by spaces)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l ext -d 'With --watch: only files with these extensions count (pm2\'s --ext: `js,json`)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l watch-delay -d 'With --watch: wait this long after a change before restarting (e.g. 500ms, 1s; at least 100ms, so that one save is one restart)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l instance-var -d 'Name of the variable carrying the instance index (default NODE_APP_INSTANCE)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l log-date-format -d 'Timestamp format for log lines (implies --time): moment tokens like `YYYY-MM-DD HH:mm:ss.SSS Z`, or strftime like `%F %T`' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l log-type -d '`json`: write each log line as a JSON object (timestamp, app, id, instance, stream, message)' -r -f -a "json\t''"
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l log-max-size -d 'Rotate a log file before it grows past this size (e.g. 10M)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l log-retain -d 'Rotated files kept per log file (default 10 when rotation is on)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l pid -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l filter-env -d 'Leave out the variables of this shell whose names contain NAME (repeatable; pm2\'s --filter-env): the app does not see them, and `save` does not keep them' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l uid -d 'pm2\'s uid/gid: refused with the reason (run rcluster as that user)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l gid -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s o -l output -d 'File for standard output (`/dev/null` discards)' -r -F
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s e -l error -d 'File for standard error (`/dev/null` discards)' -r -F
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s l -l log -d 'File for both streams combined' -r -F
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s p -l port -d 'Cluster mode: the daemon listens on this port (0.0.0.0:PORT) and shares it with every instance (repeatable). Port 0 picks a free port' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l listen -d 'Cluster mode: an address to listen on: `127.0.0.1:8000`, `[::]:8000`, `unix:/path` (repeatable)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l exec-mode -d 'fork: instances do not share ports; cluster (the default with -i N > 1): every TCP port the program binds is shared, as pm2\'s cluster mode does, with no --port needed' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l private-port -d 'A port the program binds that stays each instance\'s own in cluster mode (repeatable)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l balance -d 'How connections reach instances: round-robin (default), shared, reuseport, proxy, least-conn' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l listen-timeout -d 'How long an instance may take to listen before it is reported (default 3000 ms)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l only -d 'Ecosystem file: only these apps (comma separated)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l env -d 'Ecosystem file: merge `env_<PROFILE>` over each app\'s `env` (app names may depend on it)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l no-autorestart -d 'Do not restart instances when they exit'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l no-autostart -d 'Add the app stopped: `rcluster start <name>` starts it later (pm2\'s --no-autostart)'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l wait-ready -d 'Ready only when the program says so: READY=1 on $NOTIFY_SOCKET (sd_notify) or Node\'s process.send(\'ready\'), as pm2\'s wait_ready'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l time -d 'Prefix every log line with a timestamp (pm2\'s format, `YYYY-MM-DDTHH:mm:ss`, local time)'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l log-compress -d 'gzip rotated log files'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l log-rotate-daily -d 'Also rotate log files at the first write after local midnight'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l no-merge-logs -d 'One log file per instance (`<name>-out-<i>.log`): the default with -i or --exec-mode cluster, as in pm2'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l merge-logs -d 'One log file per app for all its instances (pm2\'s --merge-logs)'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s f -l force
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l no-vizion
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l no-pmx
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l no-automation
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l no-treekill
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l disable-trace
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l source-map-support
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l disable-source-map-support
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l shutdown-with-message
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s x -l execute-command
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l trace
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l v8
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l event-loop-inspector
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l deep-monitoring
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l disable-logs -d 'Discard the app\'s output (both log files /dev/null)'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l attach -d 'After starting, follow the app\'s logs until Ctrl-C (pm2\'s --attach)'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s a -l update-env -d 'When `start` names a known app (which restarts it): give it this shell\'s environment'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l no-daemon -d 'Run in the foreground without a daemon, as `rcluster run` (pm2\'s --no-daemon, the container form: `CMD rcluster start app.js --no-daemon`)'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -l json -d 'Print the started instances as JSON'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand run" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -s p -l port -d 'The port, as a flag' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -l homepage -d 'The page for `/` and for --spa (default /index.html)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -l basic-auth-username -d 'Ask for this user name (HTTP basic auth; with --basic-auth-password)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -l basic-auth-password -d 'Ask for this password (HTTP basic auth; with --basic-auth-username)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -l host -d 'The address to listen on (default: every interface, as pm2)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -s n -l name -d 'App name (default: static-page-server-PORT, as pm2)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -l namespace -d 'pm2\'s namespace' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -s i -l instances -d 'Number of instances, on one port: N, `max` or -1' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -l spa -d 'Single-page app: a path that is no file gets the homepage (pm2\'s --spa)'
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -l no-daemon -d 'Run in the foreground without a daemon, as `rcluster run` (pm2\'s --no-daemon)'
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -l json -d 'Print the started instances as JSON'
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand serve" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand list" -l sort -d 'Order by a column, pm2\'s way: name, id, pid, cpu, memory, uptime, restarts or status, with `:asc` (default) or `:desc` (`--sort memory:desc`)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand list" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand list" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand list" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand list" -l json -d 'JSON array, one object per instance'
complete -c rcluster -n "__fish_rcluster_using_subcommand list" -s m -l mini-list -d 'pm2\'s compact list: `key : value` lines per instance, no table'
complete -c rcluster -n "__fish_rcluster_using_subcommand list" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand list" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand ls" -l sort -d 'Order by a column, pm2\'s way: name, id, pid, cpu, memory, uptime, restarts or status, with `:asc` (default) or `:desc` (`--sort memory:desc`)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand ls" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand ls" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand ls" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand ls" -l json -d 'JSON array, one object per instance'
complete -c rcluster -n "__fish_rcluster_using_subcommand ls" -s m -l mini-list -d 'pm2\'s compact list: `key : value` lines per instance, no table'
complete -c rcluster -n "__fish_rcluster_using_subcommand ls" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand ls" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand ps" -l sort -d 'Order by a column, pm2\'s way: name, id, pid, cpu, memory, uptime, restarts or status, with `:asc` (default) or `:desc` (`--sort memory:desc`)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand ps" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand ps" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand ps" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand ps" -l json -d 'JSON array, one object per instance'
complete -c rcluster -n "__fish_rcluster_using_subcommand ps" -s m -l mini-list -d 'pm2\'s compact list: `key : value` lines per instance, no table'
complete -c rcluster -n "__fish_rcluster_using_subcommand ps" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand ps" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand status" -l sort -d 'Order by a column, pm2\'s way: name, id, pid, cpu, memory, uptime, restarts or status, with `:asc` (default) or `:desc` (`--sort memory:desc`)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand status" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand status" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand status" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand status" -l json -d 'JSON array, one object per instance'
complete -c rcluster -n "__fish_rcluster_using_subcommand status" -s m -l mini-list -d 'pm2\'s compact list: `key : value` lines per instance, no table'
complete -c rcluster -n "__fish_rcluster_using_subcommand status" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand status" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand jlist" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand jlist" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand jlist" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand jlist" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand jlist" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand prettylist" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand prettylist" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand prettylist" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand prettylist" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand prettylist" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand monit" -l interval -d 'Time between refreshes (e.g. 1s, 500ms); CPU % is measured over it' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand monit" -l count -d 'Print this many tables, one per refresh, then exit (as `top -b -n`), even on a terminal' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand monit" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand monit" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand monit" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand monit" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand monit" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand describe" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand describe" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand describe" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand describe" -l json -d 'JSON instead of text'
complete -c rcluster -n "__fish_rcluster_using_subcommand describe" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand describe" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand desc" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand desc" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand desc" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand desc" -l json -d 'JSON instead of text'
complete -c rcluster -n "__fish_rcluster_using_subcommand desc" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand desc" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand info" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand info" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand info" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand info" -l json -d 'JSON instead of text'
complete -c rcluster -n "__fish_rcluster_using_subcommand info" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand info" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand show" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand show" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand show" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand show" -l json -d 'JSON instead of text'
complete -c rcluster -n "__fish_rcluster_using_subcommand show" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand show" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand stop" -l only -d 'Ecosystem file: only these apps (comma separated)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand stop" -l env -d 'Ecosystem file: merge `env_<PROFILE>` over each app\'s `env` (app names may depend on it)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand stop" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand stop" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand stop" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand stop" -l json -d 'Print the affected instances as JSON'
complete -c rcluster -n "__fish_rcluster_using_subcommand stop" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand stop" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand restart" -l only -d 'Ecosystem file: only these apps (comma separated)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand restart" -l env -d 'Ecosystem file: merge `env_<PROFILE>` over each app\'s `env` (app names may depend on it)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand restart" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand restart" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand restart" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand restart" -l json -d 'Print the affected instances as JSON'
complete -c rcluster -n "__fish_rcluster_using_subcommand restart" -s a -l update-env -d 'Give the restarted apps this shell\'s environment as their base (pm2\'s --update-env); otherwise they keep the one of the shell that started them'
complete -c rcluster -n "__fish_rcluster_using_subcommand restart" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand restart" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrRestart" -l only -d 'Ecosystem file: only these apps (comma separated)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrRestart" -l env -d 'Ecosystem file: merge `env_<PROFILE>` over each app\'s `env` (app names may depend on it)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrRestart" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrRestart" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrRestart" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrRestart" -l json -d 'Print the affected instances as JSON'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrRestart" -s a -l update-env -d 'Give the restarted apps this shell\'s environment as their base (pm2\'s --update-env); otherwise they keep the one of the shell that started them'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrRestart" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrRestart" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand delete" -l only -d 'Ecosystem file: only these apps (comma separated)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand delete" -l env -d 'Ecosystem file: merge `env_<PROFILE>` over each app\'s `env` (app names may depend on it)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand delete" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand delete" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand delete" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand delete" -l json -d 'Print the affected instances as JSON'
complete -c rcluster -n "__fish_rcluster_using_subcommand delete" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand delete" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand del" -l only -d 'Ecosystem file: only these apps (comma separated)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand del" -l env -d 'Ecosystem file: merge `env_<PROFILE>` over each app\'s `env` (app names may depend on it)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand del" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand del" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand del" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand del" -l json -d 'Print the affected instances as JSON'
complete -c rcluster -n "__fish_rcluster_using_subcommand del" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand del" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand reload" -l only -d 'Ecosystem file: only these apps (comma separated)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand reload" -l env -d 'Ecosystem file: merge `env_<PROFILE>` over each app\'s `env` (app names may depend on it)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand reload" -l parallel -d 'How many instances to replace at once' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand reload" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand reload" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand reload" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand reload" -s a -l update-env -d 'Give the new instances this shell\'s environment as their base (pm2\'s --update-env)'
complete -c rcluster -n "__fish_rcluster_using_subcommand reload" -l json -d 'Print the new instances as JSON'
complete -c rcluster -n "__fish_rcluster_using_subcommand reload" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand reload" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrReload" -l only -d 'Ecosystem file: only these apps (comma separated)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrReload" -l env -d 'Ecosystem file: merge `env_<PROFILE>` over each app\'s `env` (app names may depend on it)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrReload" -l parallel -d 'How many instances to replace at once' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrReload" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrReload" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrReload" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrReload" -s a -l update-env -d 'Give the new instances this shell\'s environment as their base (pm2\'s --update-env)'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrReload" -l json -d 'Print the new instances as JSON'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrReload" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrReload" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrGracefulReload" -l only -d 'Ecosystem file: only these apps (comma separated)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrGracefulReload" -l env -d 'Ecosystem file: merge `env_<PROFILE>` over each app\'s `env` (app names may depend on it)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrGracefulReload" -l parallel -d 'How many instances to replace at once' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrGracefulReload" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrGracefulReload" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrGracefulReload" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrGracefulReload" -s a -l update-env -d 'Give the new instances this shell\'s environment as their base (pm2\'s --update-env)'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrGracefulReload" -l json -d 'Print the new instances as JSON'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrGracefulReload" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand startOrGracefulReload" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand scale" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand scale" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand scale" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand scale" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand scale" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand save" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand save" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand save" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand save" -s f -l force -d 'Save even when no app runs (an empty list over the saved one), as pm2\'s --force'
complete -c rcluster -n "__fish_rcluster_using_subcommand save" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand save" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand dump" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand dump" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand dump" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand dump" -s f -l force -d 'Save even when no app runs (an empty list over the saved one), as pm2\'s --force'
complete -c rcluster -n "__fish_rcluster_using_subcommand dump" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand dump" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand resurrect" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand resurrect" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand resurrect" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand resurrect" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand resurrect" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand cleardump" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand cleardump" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand cleardump" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand cleardump" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand cleardump" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand flush" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand flush" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand flush" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand flush" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand flush" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand reloadLogs" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand reloadLogs" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand reloadLogs" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand reloadLogs" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand reloadLogs" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand reload-logs" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand reload-logs" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand reload-logs" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand reload-logs" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand reload-logs" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand signal" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand signal" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand signal" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand signal" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand signal" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand sendSignal" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand sendSignal" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand sendSignal" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand sendSignal" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand sendSignal" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand send-signal" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand send-signal" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand send-signal" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand send-signal" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand send-signal" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand reset" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand reset" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand reset" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand reset" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand reset" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand pid" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand pid" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand pid" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand pid" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand pid" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand id" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand id" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand id" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand id" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand id" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand env" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand env" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand env" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand env" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand env" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand logs" -l lines -d 'How many past lines to show per file' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand logs" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand logs" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand logs" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand logs" -s f -l follow -d 'Keep printing new lines as they come: the default, as in pm2 (kept for scripts)'
complete -c rcluster -n "__fish_rcluster_using_subcommand logs" -l nostream -d 'Print the past lines and exit, without following (pm2\'s flag; for scripts)'
complete -c rcluster -n "__fish_rcluster_using_subcommand logs" -l out -d 'Standard output only'
complete -c rcluster -n "__fish_rcluster_using_subcommand logs" -l err -d 'Standard error only'
complete -c rcluster -n "__fish_rcluster_using_subcommand logs" -l raw -d 'Lines only: no prefixes, no headers'
complete -c rcluster -n "__fish_rcluster_using_subcommand logs" -l json -d 'One JSON object per line (app, id, stream, message; timestamp for live lines)'
complete -c rcluster -n "__fish_rcluster_using_subcommand logs" -l timestamp -d 'Prefix live lines with the time they were received'
complete -c rcluster -n "__fish_rcluster_using_subcommand logs" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand logs" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand ping" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand ping" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand ping" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand ping" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand ping" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand kill" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand kill" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand kill" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand kill" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand kill" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand update" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand update" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand update" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand update" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand update" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand completions" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand completions" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand completions" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand completions" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand completions" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand ecosystem" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand ecosystem" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand ecosystem" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand ecosystem" -s f -l force -d 'Overwrite the file if it exists'
complete -c rcluster -n "__fish_rcluster_using_subcommand ecosystem" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand ecosystem" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand init" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand init" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand init" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand init" -s f -l force -d 'Overwrite the file if it exists'
complete -c rcluster -n "__fish_rcluster_using_subcommand init" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand init" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand startup" -s u -d 'The user the daemon runs as (pm2\'s -u; default: you, or the user who ran sudo)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand startup" -l hp -d 'That user\'s home directory (pm2\'s --hp; default: from the user database)' -r -F
complete -c rcluster -n "__fish_rcluster_using_subcommand startup" -l service-name -d 'The unit\'s name (default rcluster-<user>, or rcluster for --user)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand startup" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand startup" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand startup" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand startup" -l user -d 'A user unit (`systemctl --user`, ~/.config/systemd/user/rcluster.service) instead of a system unit (/etc/systemd/system/rcluster-<user>.service, needs root to install)'
complete -c rcluster -n "__fish_rcluster_using_subcommand startup" -l install -d 'Write the unit file (default: print it)'
complete -c rcluster -n "__fish_rcluster_using_subcommand startup" -l wait-ip -d 'Start only once the network is up (network-online.target; pm2\'s --wait-ip)'
complete -c rcluster -n "__fish_rcluster_using_subcommand startup" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand startup" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand unstartup" -s u -d 'The user the daemon runs as (pm2\'s -u; default: you, or the user who ran sudo)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand unstartup" -l hp -d 'That user\'s home directory (pm2\'s --hp; default: from the user database)' -r -F
complete -c rcluster -n "__fish_rcluster_using_subcommand unstartup" -l service-name -d 'The unit\'s name (default rcluster-<user>, or rcluster for --user)' -r
complete -c rcluster -n "__fish_rcluster_using_subcommand unstartup" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand unstartup" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand unstartup" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand unstartup" -l user -d 'Remove the user unit instead of the system unit'
complete -c rcluster -n "__fish_rcluster_using_subcommand unstartup" -s h -l help -d 'Print help'
complete -c rcluster -n "__fish_rcluster_using_subcommand unstartup" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand import" -l pm2-home -d 'pm2\'s home (default: $PM2_HOME, else ~/.pm2); the list is its dump.pm2' -r -F
complete -c rcluster -n "__fish_rcluster_using_subcommand import" -l write -d 'Write the apps as an ecosystem file instead of starting them (to review, edit and keep)' -r -F
complete -c rcluster -n "__fish_rcluster_using_subcommand import" -s v -l verbose -d 'Print error causes in full'
complete -c rcluster -n "__fish_rcluster_using_subcommand import" -l no-color -d 'pm2\'s flag for plain output; rcluster\'s is plain already'
complete -c rcluster -n "__fish_rcluster_using_subcommand import" -s s -l silent -d 'Nothing on stdout from commands that change things (pm2\'s -s); what a command is asked to show (list, logs, describe, pid...) still prints, and errors go to stderr'
complete -c rcluster -n "__fish_rcluster_using_subcommand import" -l save -d 'Then save rcluster\'s process list, so `resurrect` and the `startup` unit bring them back'
complete -c rcluster -n "__fish_rcluster_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rcluster -n "__fish_rcluster_using_subcommand import" -s V -l version -d 'Print version'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "start" -d 'Start a program, a script, a quoted command line, as N instances (or a known app again: its name, an id, `all`)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "run" -d 'Run apps in the foreground without a daemon (pm2-runtime, for containers): output to stdout/stderr, SIGTERM/SIGINT stop them, exits when all have ended'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "serve" -d 'Serve a folder\'s files over HTTP as an app (pm2\'s serve): `serve dist 3000 --spa`'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "list" -d 'List every instance (a table, or JSON for scripts)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "jlist" -d 'The same as `list --json` (pm2\'s jlist)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "prettylist" -d '`list --json`, indented (pm2\'s prettylist)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "monit" -d 'A live dashboard: instances with CPU and memory, the selected app\'s logs and details; keys to restart, reload, stop and filter; q quits (a table per refresh into a pipe)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "describe" -d 'Show everything about an app'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "stop" -d 'Stop instances (the stop signal, then SIGKILL after kill_timeout)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "restart" -d 'Stop then start instances again (with an ecosystem file, its new definitions, and its apps that do not run are started: pm2\'s startOrRestart)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "delete" -d 'Stop instances and forget them'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "reload" -d 'Replace instances one at a time with zero downtime (new one ready, then the old one drained); with an ecosystem file, its apps that do not run are started (pm2\'s startOrReload)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "scale" -d 'Set the number of instances of an app: N, +N or -N (removals drain like a reload)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "save" -d 'Save the process list, to be restored by `resurrect` (and at boot, see `startup`)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "resurrect" -d 'Start the saved apps that do not run'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "cleardump" -d 'Empty the saved process list (the previous one is kept as dump.pm2.bak)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "flush" -d 'Empty the log files of apps'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "reloadLogs" -d 'Reopen every log file (after an external logrotate moved them)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "signal" -d 'Send a signal to the main process of running instances (pm2\'s sendSignal)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "reset" -d 'Set the restart counts of instances back to 0'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "pid" -d 'Print the pids of running instances, one per line'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "id" -d 'Print the ids of an app\'s instances (pm2\'s id: `[ 0, 1 ]`)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "env" -d 'Print the environment a running instance\'s program started with (pm2\'s env)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "logs" -d 'Show the last lines of app logs, then follow live lines until Ctrl-C (--nostream: exit)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "ping" -d 'Check that the daemon answers (it is started if needed)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "kill" -d 'Stop every app and the daemon'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "update" -d 'Replace the running daemon by this rcluster binary, keeping every app, pid and socket'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "completions" -d 'Print shell completions'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "ecosystem" -d 'Write a commented example ecosystem file (ecosystem.yaml)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "startup" -d 'Print (or install) a systemd unit that starts rcluster at boot and resurrects the saved apps'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "unstartup" -d 'Remove the systemd unit installed by `startup --install`'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "import" -d 'Start the apps another process manager saved (pm2\'s `pm2 save` list)'
complete -c rcluster -n "__fish_rcluster_using_subcommand help; and not __fish_seen_subcommand_from start run serve list jlist prettylist monit describe stop restart delete reload scale save resurrect cleardump flush reloadLogs signal reset pid id env logs ping kill update completions ecosystem startup unstartup import help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
