//! JSON catalogs, one record at a time: JSON Lines line by line, and a JSON array through a
//! streaming visitor on a reader thread, so neither is ever held in memory whole.

use std::fmt;
use std::io::BufRead;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use serde::Deserializer as _;
use serde::de::{self, SeqAccess, Visitor};
use serde_json::Value;

/// A numbered JSON record, or why it could not be read.
pub(super) type JsonRecord = (usize, Result<Value, String>);

/// Records the reader thread may read ahead of the importer.
const READ_AHEAD: usize = 256;

/// The elements of a JSON array. serde_json's stream deserializer reads whitespace-separated
/// values, not array elements, so a visitor walks the array on a thread of its own and hands
/// each element over a bounded channel; dropping the iterator stops the thread at its next
/// element. A syntax error cannot be skipped inside an array: it is reported as the next
/// record and reading stops.
pub(super) fn array_records(
    reader: Box<dyn BufRead + Send>,
) -> Result<impl Iterator<Item = JsonRecord>, String> {
    let (sender, receiver) = sync_channel(READ_AHEAD);
    std::thread::Builder::new()
        .name("catalog-reader".into())
        .spawn(move || walk_array(reader, &sender))
        .map_err(|e| format!("cannot start the reader thread: {e}"))?;
    Ok(ReceivedRecords(receiver))
}

struct ReceivedRecords(Receiver<JsonRecord>);

impl Iterator for ReceivedRecords {
    type Item = JsonRecord;

    fn next(&mut self) -> Option<JsonRecord> {
        self.0.recv().ok()
    }
}

fn walk_array(reader: Box<dyn BufRead + Send>, sender: &SyncSender<JsonRecord>) {
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let mut sent = 0;
    let walked = deserializer
        .deserialize_seq(ArrayVisitor { sender, sent: &mut sent })
        .and_then(|()| deserializer.end());
    if let Err(e) = walked {
        // A send error means the importer is gone, which is what stopped the walk.
        let _ = sender.send((sent + 1, Err(format!("malformed JSON, reading stopped here: {e}"))));
    }
}

/// Sends each element of an array as it is parsed.
struct ArrayVisitor<'a> {
    sender: &'a SyncSender<JsonRecord>,
    sent: &'a mut usize,
}

impl<'de> Visitor<'de> for ArrayVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of products")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut elements: A) -> Result<(), A::Error> {
        while let Some(element) = elements.next_element::<Value>()? {
            let record = *self.sent + 1;
            if self.sender.send((record, Ok(element))).is_err() {
                return Err(de::Error::custom("the importer stopped reading"));
            }
            *self.sent = record;
        }
        Ok(())
    }
}

/// The lines of a JSON Lines file, numbered by line; blank lines are skipped, and a line that is
/// not JSON is a bad record, not the end of the file.
pub(super) fn line_records(reader: Box<dyn BufRead + Send>) -> impl Iterator<Item = JsonRecord> {
    JsonLines { reader, line: 0, buffer: Vec::new(), failed: false }
}

struct JsonLines {
    reader: Box<dyn BufRead + Send>,
    line: usize,
    buffer: Vec<u8>,
    failed: bool,
}

impl Iterator for JsonLines {
    type Item = JsonRecord;

    fn next(&mut self) -> Option<JsonRecord> {
        while !self.failed {
            self.buffer.clear();
            self.line += 1;
            match self.reader.read_until(b'\n', &mut self.buffer) {
                Ok(0) => return None,
                Ok(_) if self.buffer.trim_ascii().is_empty() => continue,
                Ok(_) => {
                    return Some((self.line, serde_json::from_slice(&self.buffer).map_err(malformed_line)));
                }
                Err(e) => {
                    self.failed = true;
                    return Some((
                        self.line,
                        Err(format!("cannot read the file, reading stopped here: {e}")),
                    ));
                }
            }
        }
        None
    }
}

/// serde_json's message with the column, without its "line 1" (the record number is the line).
fn malformed_line(error: serde_json::Error) -> String {
    let message = error.to_string();
    let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(text, _)| text);
    format!("malformed JSON at column {}: {message}", error.column())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn reader(text: &str) -> Box<dyn BufRead + Send> {
        Box::new(Cursor::new(text.as_bytes().to_vec()))
    }

    #[test]
    fn array_elements_come_one_by_one_numbered_from_one() {
        let records: Vec<_> = array_records(reader(r#" [ {"a": 1}, {"a": 2} , 3 ] "#)).unwrap().collect();
        assert_eq!(
            records,
            [
                (1, Ok(serde_json::json!({"a": 1}))),
                (2, Ok(serde_json::json!({"a": 2}))),
                (3, Ok(Value::from(3)))
            ]
        );
    }

    #[test]
    fn a_syntax_error_in_an_array_is_the_last_record() {
        let records: Vec<_> = array_records(reader(r#"[{"a": 1}, {"a": }, {"a": 3}]"#)).unwrap().collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].0, 2);
        let reason = records[1].1.as_ref().unwrap_err();
        assert!(reason.starts_with("malformed JSON, reading stopped here: "), "{reason}");
    }

    #[test]
    fn a_file_that_is_not_an_array_is_one_bad_record() {
        let records: Vec<_> = array_records(reader(r#"{"a": 1}"#)).unwrap().collect();
        assert_eq!(records.len(), 1);
        assert!(records[0].1.as_ref().unwrap_err().contains("a JSON array of products"));
    }

    #[test]
    fn an_empty_array_has_no_records() {
        assert_eq!(array_records(reader(" [ ] ")).unwrap().count(), 0);
    }

    #[test]
    fn trailing_garbage_after_an_array_is_reported() {
        let records: Vec<_> = array_records(reader("[{}] x")).unwrap().collect();
        assert_eq!(records.len(), 2);
        assert!(records[1].1.is_err());
    }

    #[test]
    fn dropping_the_records_stops_the_reader_thread() {
        let big = format!("[{}{{}}]", "{},".repeat(100_000));
        let mut records = array_records(reader(&big)).unwrap();
        assert!(records.next().is_some());
        drop(records); // The thread ends at its next send; nothing to assert but no hang.
    }

    #[test]
    fn json_lines_are_numbered_by_line_and_bad_lines_skipped() {
        let text = "{\"a\": 1}\n\n{\"a\": oops}\n  {\"a\": 3}  \r\n{\"a\": 4}";
        let records: Vec<_> = line_records(reader(text)).collect();
        let numbers: Vec<usize> = records.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 3, 4, 5]);
        assert_eq!(records[1].1, Err("malformed JSON at column 7: expected value".to_owned()));
        assert_eq!(records[3].1, Ok(serde_json::json!({"a": 4})));
    }

    #[test]
    fn invalid_utf8_on_a_line_is_a_bad_record_only() {
        let mut bytes = b"{\"a\": \"\xFF\"}\n".to_vec();
        bytes.extend_from_slice(b"{\"a\": 2}\n");
        let records: Vec<_> = line_records(Box::new(Cursor::new(bytes))).collect();
        assert!(records[0].1.is_err());
        assert_eq!(records[1], (2, Ok(serde_json::json!({"a": 2}))));
    }
}
