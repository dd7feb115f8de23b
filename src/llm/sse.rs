//! Server-Sent Events read incrementally from a byte stream: the `data:` payloads of each
//! event, whatever the chunk boundaries (a line may be split across chunks, and CRLF or LF
//! may end lines). An event, or a line, larger than `MAX_EVENT_BYTES` is refused rather than
//! buffered without end: a provider's stream is untrusted input.

/// The largest event (or unterminated line) held.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// An event grew past `MAX_EVENT_BYTES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTooLarge;

/// Accumulates bytes and yields complete events' data.
#[derive(Debug, Default)]
pub struct SseReader {
    buffer: Vec<u8>,
    data: Vec<String>,
    /// Bytes of `data` so far.
    held: usize,
}

impl SseReader {
    /// Feeds a chunk; returns the data of every event it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<String>, EventTooLarge> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(self.data.join("\n"));
                    self.data.clear();
                    self.held = 0;
                }
            } else if let Some(value) = line.strip_prefix("data:") {
                let value = value.strip_prefix(' ').unwrap_or(value);
                self.held += value.len();
                self.data.push(value.to_string());
            }
            // Comments (":"), `event:`, `id:` and `retry:` lines carry nothing we use.
        }
        if self.held + self.buffer.len() > MAX_EVENT_BYTES {
            return Err(EventTooLarge);
        }
        Ok(events)
    }

    /// The data of an event left unterminated when the stream ended.
    pub fn finish(&mut self) -> Option<String> {
        let line = String::from_utf8_lossy(&self.buffer).trim_end().to_string();
        self.buffer.clear();
        if let Some(value) = line.strip_prefix("data:") {
            self.data
                .push(value.strip_prefix(' ').unwrap_or(value).to_string());
        }
        (!self.data.is_empty()).then(|| std::mem::take(&mut self.data).join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_are_put_back_together() {
        let stream = b": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata: line one\ndata: line two\n\ndata: [DONE]\n\n";
        for size in 1..stream.len() {
            let mut reader = SseReader::default();
            let mut events = Vec::new();
            for chunk in stream.chunks(size) {
                events.extend(reader.feed(chunk).unwrap());
            }
            assert_eq!(
                events,
                vec!["{\"a\":1}", "line one\nline two", "[DONE]"],
                "chunks of {size}"
            );
            assert_eq!(reader.finish(), None);
        }
    }

    #[test]
    fn an_unterminated_last_event_is_kept() {
        let mut reader = SseReader::default();
        assert!(reader.feed(b"data: tail").unwrap().is_empty());
        assert_eq!(reader.finish().as_deref(), Some("tail"));
    }

    #[test]
    fn an_endless_line_or_event_is_refused() {
        let mut reader = SseReader::default();
        let piece = vec![b'x'; 64 * 1024];
        let mut refused = false;
        for _ in 0..20 {
            if reader.feed(&piece).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused, "a line without end is not buffered past the limit");

        let mut reader = SseReader::default();
        let line = format!("data: {}\n", "y".repeat(64 * 1024));
        let mut refused = false;
        for _ in 0..20 {
            if reader.feed(line.as_bytes()).is_err() {
                refused = true;
                break;
            }
        }
        assert!(
            refused,
            "an event without its blank line is not held past the limit"
        );
    }
}
