//! How many TCP connections a process group still has open, from /proc: the socket inodes
//! behind its fds, matched against ESTABLISHED entries of /proc/net/tcp{,6}. A graceful stop
//! of a cluster instance waits (up to kill_timeout) for this to reach zero before signalling,
//! so requests in flight on connections it was dealt finish first.

use std::collections::HashSet;

/// Open TCP connections of every process in group `pgid`; None when /proc cannot tell.
pub fn established(pgid: i32) -> Option<usize> {
    let inodes = socket_inodes(pgid)?;
    if inodes.is_empty() {
        return Some(0);
    }
    let mut count = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            let (Some(state), Some(inode)) = (fields.get(3), fields.get(9)) else {
                continue;
            };
            if *state == "01" && inode.parse::<u64>().is_ok_and(|i| inodes.contains(&i)) {
                count += 1;
            }
        }
    }
    Some(count)
}

fn socket_inodes(pgid: i32) -> Option<HashSet<u64>> {
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if process_group(pid) != Some(pgid) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
            {
                if let Ok(inode) = inode.parse() {
                    inodes.insert(inode);
                }
            }
        }
    }
    Some(inodes)
}

fn process_group(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_our_own_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let pgid = nix::unistd::getpgrp().as_raw();
        // Both ends belong to this test's process group.
        assert!(established(pgid).expect("readable /proc") >= 2);
        drop((client, server));
    }
}
