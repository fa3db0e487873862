//! The little of HTTP/1.1 the `http` workload speaks: it parses a response head and
//! accepts only what a keep-alive exchange of small bodies should produce (status 200,
//! one `Content-Length`, no chunked body, no `Connection: close`). Anything else is an
//! error, so a server cannot look fast by answering wrongly.

/// Longest response head accepted.
pub const MAX_HEAD: usize = 8 * 1024;

/// A complete response head: its length (with the blank line) and the body length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub len: usize,
    pub content_length: usize,
}

/// `Ok(None)` while the head is incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(format!("no end of response head in {} bytes", buf.len()));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "response head is not text")?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200 ") && status != "HTTP/1.1 200" {
        return Err(format!("status line {status:?}, expected HTTP/1.1 200"));
    }
    let mut content_length = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header line {line:?}"))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                if content_length.is_some() {
                    return Err("two Content-Length headers".into());
                }
                content_length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| format!("Content-Length {value:?}"))?,
                );
            }
            "transfer-encoding" => {
                return Err(format!(
                    "Transfer-Encoding {value:?} (expected Content-Length)"
                ))
            }
            "connection" if value.eq_ignore_ascii_case("close") => {
                return Err("server closes the keep-alive connection".into())
            }
            _ => {}
        }
    }
    let content_length = content_length.ok_or("response without Content-Length")?;
    Ok(Some(Head {
        len: end + 4,
        content_length,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_keep_alive_response() {
        let r = b"HTTP/1.1 200 OK\r\nDate: x\r\nConnection: keep-alive\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(
            parse_head(r),
            Ok(Some(Head {
                len: r.len() - 5,
                content_length: 5
            }))
        );
        assert_eq!(parse_head(&r[..20]), Ok(None));
    }

    #[test]
    fn rejects_what_a_keep_alive_benchmark_cannot_count() {
        for bad in [
            &b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"[..],
            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nnocolon\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse_head(&vec![b'a'; MAX_HEAD + 1]).is_err());
    }
}
