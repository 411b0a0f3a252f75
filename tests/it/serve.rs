//! `rcluster serve` (pm2's serve): a folder's files over HTTP as a managed app, pm2's SPA
//! fallback and basic auth, cluster mode on one port, ecosystem files with `script: serve`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::{free_port, wait_until, Home};

/// One exchange on a fresh connection: (status, head, body).
fn get(port: u16, request: &str) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    split(&raw)
}

fn split(raw: &[u8]) -> std::io::Result<(u16, String, Vec<u8>)> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no head in {raw:?}")))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    Ok((status, head, raw[end + 4..].to_vec()))
}

fn path_get(port: u16, path: &str, extra: &str) -> (u16, String, String) {
    let (status, head, body) = get(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"),
    )
    .expect("an answer");
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

fn site(home: &Home) -> std::path::PathBuf {
    let root = home.work().join("site");
    std::fs::create_dir_all(root.join("assets")).expect("mkdir");
    std::fs::write(root.join("index.html"), "<h1>home</h1>").expect("write");
    std::fs::write(root.join("assets/app.js"), "console.log(1)").expect("write");
    std::fs::write(root.join("data.bin"), b"0123456789").expect("write");
    root
}

fn serving(port: u16) -> Option<()> {
    get(port, "HEAD / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .ok()
        .map(|_| ())
}

#[test]
fn serves_a_folder_like_pm2_serve() {
    let home = Home::new();
    let root = site(&home);
    let port = free_port();
    let (root_text, port_text) = (root.to_str().expect("path"), port.to_string());
    home.ok(&["serve", root_text, &port_text, "--host", "127.0.0.1"]);
    let name = format!("static-page-server-{port}");
    assert_eq!(home.app(&name).len(), 1, "pm2's name for it");
    wait_until("serving", || serving(port));

    let (status, head, body) = path_get(port, "/", "");
    assert_eq!((status, body.as_str()), (200, "<h1>home</h1>"), "{head}");
    let (status, head, body) = path_get(port, "/assets/app.js?v=2", "");
    assert_eq!((status, body.as_str()), (200, "console.log(1)"));
    assert!(head.contains("Content-Type: text/javascript"), "{head}");
    let (status, _, body) = path_get(port, "/missing/route", "");
    assert_eq!((status, body.as_str()), (404, "404 Not Found"));
    let (status, _, _) = path_get(port, "/../../etc/passwd", "");
    assert_eq!(status, 403, "nothing above the folder");
    let (status, head, body) = path_get(port, "/data.bin", "Range: bytes=2-4\r\n");
    assert_eq!((status, body.as_str()), (206, "234"));
    assert!(head.contains("Content-Range: bytes 2-4/10"), "{head}");
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .expect("an ETag")
        .to_owned();
    let (status, _, body) = path_get(port, "/data.bin", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!((status, body.as_str()), (304, ""));
    let (status, head, body) = get(
        port,
        "POST / HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .expect("answer");
    assert_eq!(status, 405, "{head} {body:?}");

    // Keep-alive: two requests (pipelined) on one connection, two answers.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
        .write_all(b"GET /assets/app.js HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert!(
        text.ends_with("Connection: close\r\n\r\n"),
        "HEAD has no body: {text}"
    );
}

#[test]
fn spa_basic_auth_and_instances_on_one_port() {
    let home = Home::new();
    let root = site(&home);
    let port = free_port();
    let (root_text, port_text) = (root.to_str().expect("path"), port.to_string());
    home.ok(&[
        "serve",
        root_text,
        "--port",
        &port_text,
        "--host",
        "127.0.0.1",
        "--spa",
        "--basic-auth-username",
        "ann",
        "--basic-auth-password",
        "s3:cret",
        "--name",
        "front",
        "-i",
        "2",
    ]);
    wait_until("2 online", || home.online_pids("front", 2));
    wait_until("serving", || serving(port));
    let (status, head, _) = path_get(port, "/", "");
    assert_eq!(status, 401);
    assert!(head.contains("WWW-Authenticate: Basic"), "{head}");
    // "ann:s3:cret"
    let auth = "Authorization: Basic YW5uOnMzOmNyZXQ=\r\n";
    let (status, _, body) = path_get(port, "/deep/client/route", auth);
    assert_eq!(
        (status, body.as_str()),
        (200, "<h1>home</h1>"),
        "the SPA's page"
    );
    let (status, _, body) = path_get(port, "/assets/app.js", auth);
    assert_eq!((status, body.as_str()), (200, "console.log(1)"));
    // Both instances serve the one port.
    wait_until("both instances dealt to", || {
        let _ = path_get(port, "/", auth);
        home.app("front")
            .iter()
            .all(|i| i.accepted > 0)
            .then_some(())
    });
}

#[test]
fn an_ecosystem_file_with_script_serve() {
    let home = Home::new();
    let root = site(&home);
    let port = free_port();
    let file = home.work().join("ecosystem.config.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"apps": [{{"name": "web", "script": "serve", "env": {{
                "PM2_SERVE_PATH": "{}", "PM2_SERVE_PORT": "{port}", "PM2_SERVE_SPA": "true",
                "PM2_SERVE_HOMEPAGE": "./index.html", "RCLUSTER_SERVE_HOST": "127.0.0.1"}}}}]}}"#,
            root.display()
        ),
    )
    .expect("write");
    home.ok(&["start", file.to_str().expect("path")]);
    wait_until("serving", || serving(port));
    let (status, _, body) = path_get(port, "/anything", "");
    assert_eq!((status, body.as_str()), (200, "<h1>home</h1>"));

    // A folder that does not exist is a clear error, before anything starts.
    let missing = home.work().join("nope");
    let err = home.fails(&["serve", missing.to_str().expect("path"), "9"]);
    assert!(err.contains("no such folder"), "{err}");
}
