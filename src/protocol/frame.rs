//! Framing: a u32 big-endian length, then that many bytes of JSON. The length is checked before
//! anything is allocated; EOF between frames is a clean close, EOF inside one is an error.

use std::io::{self, Read, Write};

use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame either side accepts (a `list` of thousands of instances fits easily).
pub const MAX_FRAME: u32 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes is larger than the limit of {MAX_FRAME}")]
    TooLarge { len: usize },
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("malformed frame: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error(transparent)]
    Io(#[from] io::Error),
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(value)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|len| *len <= MAX_FRAME)
        .ok_or(FrameError::TooLarge { len: body.len() })?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    Ok(serde_json::from_slice(body)?)
}

fn check_len(head: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(head);
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge { len: len as usize });
    }
    Ok(len as usize)
}

/// `Ok(None)`: the peer hung up cleanly between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        let n = r.read(&mut head[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    let mut body = vec![0; check_len(head)?];
    r.read_exact(&mut body).await.map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    Ok(Some(body))
}

pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    value: &T,
) -> Result<(), FrameError> {
    w.write_all(&encode(value)?).await?;
    w.flush().await?;
    Ok(())
}

/// Blocking twin of `read_frame`, for the CLI (which needs no async runtime).
pub fn read_frame_blocking<R: Read>(r: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        let n = match r.read(&mut head[got..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    let mut body = vec![0; check_len(head)?];
    r.read_exact(&mut body).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    Ok(Some(body))
}

pub fn write_frame_blocking<W: Write, T: Serialize>(
    w: &mut W,
    value: &T,
) -> Result<(), FrameError> {
    w.write_all(&encode(value)?)?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let bytes = encode(&vec![1, 2, 3]).expect("encode");
        let mut cursor = io::Cursor::new(bytes);
        let body = read_frame_blocking(&mut cursor)
            .expect("read")
            .expect("frame");
        assert_eq!(decode::<Vec<i32>>(&body).expect("decode"), vec![1, 2, 3]);
        assert!(read_frame_blocking(&mut cursor).expect("eof").is_none());

        let mut huge = io::Cursor::new((MAX_FRAME + 1).to_be_bytes().to_vec());
        assert!(matches!(
            read_frame_blocking(&mut huge),
            Err(FrameError::TooLarge { .. })
        ));
        let mut cut = io::Cursor::new(vec![0, 0, 0, 9, b'{']);
        assert!(matches!(
            read_frame_blocking(&mut cut),
            Err(FrameError::Truncated)
        ));
        let mut half_head = io::Cursor::new(vec![0, 0]);
        assert!(matches!(
            read_frame_blocking(&mut half_head),
            Err(FrameError::Truncated)
        ));
        assert!(decode::<Vec<i32>>(b"not json").is_err());
    }
}
