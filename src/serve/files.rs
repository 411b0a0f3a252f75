//! The answer to one request: which file a path names below the root (never above it), pm2's
//! fallbacks (`/` → the homepage; with SPA, a missing path → its last part at the root, then the
//! homepage; else the root's 404.html), basic auth, ETag and one byte range.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::request::Request;
use super::Config;

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

pub enum Body {
    /// No body, and no Content-Length (304).
    None,
    Bytes(Vec<u8>),
    /// `len` bytes of the file from `offset`, sent with sendfile(2).
    File {
        file: std::fs::File,
        offset: u64,
        len: u64,
    },
}

impl Body {
    /// The Content-Length to announce, if any.
    pub fn len(&self) -> Option<u64> {
        match self {
            Body::None => None,
            Body::Bytes(bytes) => Some(bytes.len() as u64),
            Body::File { len, .. } => Some(*len),
        }
    }
}

fn text(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: vec![("Content-Type", "text/html; charset=utf-8".into())],
        body: Body::Bytes(body.as_bytes().to_vec()),
    }
}

/// A bare error answer (`404 Not Found`).
pub fn error(status: u16) -> Reply {
    text(status, &format!("{status} {}", reason(status)))
}

/// The reason phrase of a status line.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "Internal Server Error",
    }
}

pub fn answer(request: &Request, config: &Config) -> Reply {
    if let Some((user, password)) = &config.auth {
        if !authorized(request.header("authorization"), user, password) {
            let mut reply = text(401, "401 Unauthorized");
            reply.headers.push((
                "WWW-Authenticate",
                "Basic realm=\"Authentication service\"".into(),
            ));
            return reply;
        }
    }
    if request.method != "GET" && request.method != "HEAD" {
        let mut reply = error(405);
        reply.headers.push(("Allow", "GET, HEAD".into()));
        return reply;
    }
    let relative = match below_root(&request.target) {
        Ok(relative) => relative,
        Err(status) => return error(status),
    };
    let homepage = || below_root(&config.homepage).unwrap_or_else(|_| PathBuf::from("index.html"));
    let wants_homepage = relative.as_os_str().is_empty();
    let mut tries = vec![if wants_homepage {
        homepage()
    } else {
        relative.clone()
    }];
    if config.spa && !wants_homepage {
        if let Some(last) = relative.file_name() {
            tries.push(PathBuf::from(last));
        }
        tries.push(homepage());
    }
    for path in &tries {
        match open(&config.root.join(path)) {
            Ok(Some((file, meta))) => return file_reply(request, path, file, meta),
            Ok(None) => continue,
            Err(e) => {
                eprintln!("rcluster serve: {}: {e}", config.root.join(path).display());
                return error(if e.kind() == std::io::ErrorKind::PermissionDenied {
                    403
                } else {
                    500
                });
            }
        }
    }
    match std::fs::read(config.root.join("404.html")) {
        Ok(page) => Reply {
            status: 404,
            headers: vec![("Content-Type", "text/html; charset=utf-8".into())],
            body: Body::Bytes(page),
        },
        Err(_) => error(404),
    }
}

/// The file at `path` (a folder's index.html), None when there is none. Plain blocking calls,
/// as nginx makes them: a stat and an open of a cached file cost microseconds, less than a hop
/// to a thread pool.
fn open(path: &Path) -> std::io::Result<Option<(std::fs::File, std::fs::Metadata)>> {
    let mut path = path.to_path_buf();
    for _ in 0..2 {
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            path.push("index.html");
            continue;
        }
        if !meta.is_file() {
            return Ok(None);
        }
        return match std::fs::File::open(&path) {
            Ok(file) => Ok(Some((file, meta))),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(e),
        };
    }
    Ok(None)
}

fn is_absent(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ENAMETOOLONG)
    )
}

fn file_reply(
    request: &Request,
    path: &Path,
    file: std::fs::File,
    meta: std::fs::Metadata,
) -> Reply {
    let size = meta.len();
    let modified = meta.modified().ok();
    let nanos = modified
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("W/\"{size:x}-{nanos:x}\"");
    let mut headers = vec![("ETag", etag.clone())];
    if let Some(modified) = modified {
        headers.push(("Last-Modified", http_date(modified)));
    }
    if request
        .header("if-none-match")
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Reply {
            status: 304,
            headers,
            body: Body::None,
        };
    }
    headers.push(("Content-Type", content_type(path).into()));
    headers.push(("Accept-Ranges", "bytes".into()));
    // A Range only applies while the file is the one the client has (If-Range).
    let range = request
        .header("range")
        .filter(|_| request.header("if-range").is_none_or(|tag| tag == etag));
    let (status, start, len) = match range.map(|r| byte_range(r, size)) {
        None | Some(Range::Ignored) => (200, 0, size),
        Some(Range::Part(start, end)) => {
            headers.push(("Content-Range", format!("bytes {start}-{end}/{size}")));
            (206, start, end - start + 1)
        }
        Some(Range::Unsatisfiable) => {
            let mut reply = error(416);
            reply
                .headers
                .push(("Content-Range", format!("bytes */{size}")));
            return reply;
        }
    };
    Reply {
        status,
        headers,
        body: Body::File {
            file,
            offset: start,
            len,
        },
    }
}

/// The path a request target names below the root, `..` resolved (Err 403 if it climbs above
/// the root, as pm2 answers), the query dropped, %XX decoded (Err 400 if malformed).
pub fn below_root(target: &str) -> Result<PathBuf, u16> {
    // The absolute form (`GET http://host/path`) names the same path.
    let target = match target.split_once("://") {
        Some((scheme, rest)) if !scheme.contains('/') => {
            rest.find('/').map_or("/", |at| &rest[at..])
        }
        _ => target,
    };
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_decode(path).ok_or(400u16)?;
    let mut parts: Vec<&str> = Vec::new();
    for part in decoded.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(403);
                }
            }
            part => parts.push(part),
        }
    }
    Ok(parts.iter().collect())
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    (!text.contains('\0')).then_some(text)
}

fn authorized(header: Option<&str>, user: &str, password: &str) -> bool {
    let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ")) else {
        return false;
    };
    let Some(decoded) = base64_decode(encoded.trim()) else {
        return false;
    };
    // The user name ends at the first colon; the password may hold more.
    decoded == format!("{user}:{password}").into_bytes()
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let data = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// Not a single byte range this server handles: the whole file.
    Ignored,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

fn byte_range(header: &str, size: u64) -> Range {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Range::Ignored;
    };
    if spec.contains(',') {
        return Range::Ignored; // several ranges: the whole file is a valid answer
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Range::Ignored;
    };
    let (first, last) = (first.trim(), last.trim());
    let parsed = match (first.is_empty(), last.is_empty()) {
        // The last N bytes.
        (true, false) => match last.parse::<u64>() {
            Ok(0) => return Range::Unsatisfiable,
            Ok(n) => Some((size.saturating_sub(n), size.saturating_sub(1))),
            Err(_) => None,
        },
        (false, true) => first
            .parse::<u64>()
            .ok()
            .map(|f| (f, size.saturating_sub(1))),
        (false, false) => match (first.parse::<u64>(), last.parse::<u64>()) {
            (Ok(f), Ok(l)) if f <= l => Some((f, l.min(size.saturating_sub(1)))),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => Range::Ignored,
        Some((first, _)) if first >= size => Range::Unsatisfiable,
        Some((first, last)) => Range::Part(first, last),
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(time: SystemTime) -> String {
    let time: chrono::DateTime<chrono::Utc> = time.into();
    time.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The Content-Type for a file, by extension (application/octet-stream when unknown).
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" | "text" | "log" | "md" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "bmp" => "image/bmp",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_below_the_root() {
        assert_eq!(below_root("/"), Ok(PathBuf::new()));
        assert_eq!(
            below_root("/a/./b/../c.js?x=/../.."),
            Ok(PathBuf::from("a/c.js"))
        );
        assert_eq!(
            below_root("/a%20b/%C3%A9.txt"),
            Ok(PathBuf::from("a b/é.txt"))
        );
        assert_eq!(below_root("/../etc/passwd"), Err(403));
        assert_eq!(below_root("/a/%2e%2e/%2E%2E/x"), Err(403));
        assert_eq!(below_root("/%zz"), Err(400));
        assert_eq!(
            below_root("http://host:80/a/b.js?x"),
            Ok(PathBuf::from("a/b.js"))
        );
        assert_eq!(below_root("http://host"), Ok(PathBuf::new()));
        assert_eq!(below_root("/a%00b"), Err(400));
    }

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-9", 100), Range::Part(0, 9));
        assert_eq!(byte_range("bytes=90-", 100), Range::Part(90, 99));
        assert_eq!(byte_range("bytes=-10", 100), Range::Part(90, 99));
        assert_eq!(byte_range("bytes=-1000", 100), Range::Part(0, 99));
        assert_eq!(byte_range("bytes=50-1000", 100), Range::Part(50, 99));
        assert_eq!(byte_range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(byte_range("bytes=-0", 100), Range::Unsatisfiable);
        assert_eq!(byte_range("bytes=5-1", 100), Range::Ignored);
        assert_eq!(byte_range("bytes=0-1,5-6", 100), Range::Ignored);
        assert_eq!(byte_range("items=0-1", 100), Range::Ignored);
    }

    #[test]
    fn basic_auth() {
        // "user:pa:ss"
        assert!(authorized(Some("Basic dXNlcjpwYTpzcw=="), "user", "pa:ss"));
        assert!(!authorized(Some("Basic dXNlcjpwYTpzcw=="), "user", "pa"));
        assert!(!authorized(Some("Bearer x"), "user", "pa:ss"));
        assert!(!authorized(Some("Basic !!!"), "user", "pa:ss"));
        assert!(!authorized(None, "user", "pa:ss"));
        assert_eq!(base64_decode("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YWI=").as_deref(), Some(&b"ab"[..]));
    }

    #[test]
    fn dates_and_types() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            content_type(Path::new("a/B.JS")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }
}
