//! Server-Sent Events read incrementally from a byte stream: the `data:` payloads of each
//! event, whatever the chunk boundaries (a line may be split across chunks, and CRLF or LF
//! may end lines).

/// Accumulates bytes and yields complete events' data.
#[derive(Debug, Default)]
pub struct SseReader {
    buffer: Vec<u8>,
    data: Vec<String>,
}

impl SseReader {
    /// Feeds a chunk; returns the data of every event it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
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
                }
            } else if let Some(value) = line.strip_prefix("data:") {
                self.data
                    .push(value.strip_prefix(' ').unwrap_or(value).to_string());
            }
            // Comments (":"), `event:`, `id:` and `retry:` lines carry nothing we use.
        }
        events
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
                events.extend(reader.feed(chunk));
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
        assert!(reader.feed(b"data: tail").is_empty());
        assert_eq!(reader.finish().as_deref(), Some("tail"));
    }
}
