//! Writing a report (counting and CRC-ing record lines) and reading one back with its integrity
//! checked. The `end` record carries the number of record lines before it and the CRC-32
//! (ISO-HDLC, as `crc32fast` computes it) of those lines, each followed by `\n`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::record::{hex, parse_hex, End, Record, RunStatus};

/// Accumulates the count and CRC of the record lines of one report.
#[derive(Clone, Default)]
pub struct ReportWriter {
    records: u64,
    crc: crc32fast::Hasher,
}

impl ReportWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Encode `rec` as its line (no newline) and account for it. Print the line followed by `\n`.
    pub fn encode(&mut self, rec: &Record) -> String {
        let line = rec.to_line();
        self.account(&line);
        line
    }

    /// Account for an already encoded record line (without its newline).
    pub fn account(&mut self, line: &str) {
        self.records += 1;
        self.crc.update(line.as_bytes());
        self.crc.update(b"\n");
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// The `end` record for what has been written so far.
    pub fn end(&self, status: RunStatus, elapsed_ms: u64) -> Record {
        Record::End(End {
            records: self.records,
            crc32: hex(u64::from(self.crc.clone().finalize())),
            status,
            elapsed_ms,
        })
    }
}

/// How a report read back stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Integrity {
    /// An `end` record was found and its count and CRC match the lines before it.
    Verified,
    /// No `end` record: the capture stopped early (or the run hung).
    Truncated(String),
    /// Count or CRC mismatch, or a record line that does not parse.
    Corrupted(String),
}

impl Integrity {
    pub fn is_verified(&self) -> bool {
        matches!(self, Integrity::Verified)
    }
}

/// A report read from a serial log or record file.
#[derive(Clone, Debug)]
pub struct ParsedReport {
    /// The records in order, the `end` record included.
    pub records: Vec<Record>,
    /// The raw record lines, as CRC-ed.
    pub lines: Vec<String>,
    pub integrity: Integrity,
}

impl ParsedReport {
    pub fn end(&self) -> Option<&End> {
        self.records.iter().rev().find_map(|r| match r {
            Record::End(e) => Some(e),
            _ => None,
        })
    }
}

/// Extract the record text from one log line: a line beginning with `{` is a record; serial
/// noise before `{"type":` (firmware escape codes, a board's boot chatter) is cut off.
pub fn record_text(line: &str) -> Option<&str> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.starts_with('{') {
        return Some(line);
    }
    line.find("{\"type\":").map(|i| &line[i..])
}

/// Read a report from `text` (a serial log with any noise around the records, or a record
/// file), and check its integrity. The first complete report in the text is taken.
pub fn parse_report(text: &str) -> ParsedReport {
    let mut records = Vec::new();
    let mut lines = Vec::new();
    let mut writer = ReportWriter::new();
    let mut integrity = None;
    for (lineno, raw) in text.split('\n').enumerate() {
        let Some(line) = record_text(raw) else {
            continue;
        };
        let rec = match Record::from_line(line) {
            Ok(r) => r,
            Err(e) => {
                integrity.get_or_insert(Integrity::Corrupted(format!(
                    "line {}: record does not parse ({e}): {}",
                    lineno + 1,
                    truncate(line, 80)
                )));
                writer.account(line);
                lines.push(line.into());
                continue;
            }
        };
        if let Record::End(end) = &rec {
            let want = writer.end(RunStatus::Complete, 0);
            let Record::End(want) = want else {
                unreachable!()
            };
            let verdict = if end.records != want.records {
                Integrity::Corrupted(format!(
                    "end record counts {} record lines but {} precede it",
                    end.records, want.records
                ))
            } else if parse_hex(&end.crc32) != parse_hex(&want.crc32) {
                Integrity::Corrupted(format!(
                    "CRC mismatch: end record says {}, the {} record lines give {}",
                    end.crc32, want.records, want.crc32
                ))
            } else {
                Integrity::Verified
            };
            lines.push(line.into());
            records.push(rec);
            // An earlier unparsable line wins over a matching CRC (cannot happen unless the CRC
            // collides, but the first problem found is the one to report).
            let integrity = integrity.unwrap_or(verdict);
            return ParsedReport {
                records,
                lines,
                integrity,
            };
        }
        writer.account(line);
        lines.push(line.into());
        records.push(rec);
    }
    let integrity = integrity.unwrap_or_else(|| {
        Integrity::Truncated(format!(
            "no end record after {} record lines: the capture is truncated or the run did not finish",
            lines.len()
        ))
    });
    ParsedReport {
        records,
        lines,
        integrity,
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ErrorRec;

    fn sample() -> String {
        let mut w = ReportWriter::new();
        let mut out = String::from("boot banner\r\n");
        for i in 0..3 {
            let rec = Record::Error(ErrorRec {
                what: "bootarg".into(),
                message: format!("bad {i}"),
            });
            out.push_str(&w.encode(&rec));
            out.push_str("\r\n");
            out.push_str("human text\n");
        }
        out.push_str(&w.end(RunStatus::Complete, 5).to_line());
        out.push_str("\nsummary after end\n");
        out
    }

    #[test]
    fn crc_matches_known_value() {
        // CRC-32/ISO-HDLC check value of "123456789" is 0xcbf43926.
        let mut h = crc32fast::Hasher::new();
        h.update(b"123456789");
        assert_eq!(h.finalize(), 0xcbf4_3926);
    }

    #[test]
    fn verifies_a_clean_report_with_noise() {
        let p = parse_report(&sample());
        assert_eq!(p.integrity, Integrity::Verified);
        assert_eq!(p.records.len(), 4);
        assert_eq!(p.end().unwrap().records, 3);
    }

    #[test]
    fn detects_deleted_line() {
        let text = sample();
        let cut: Vec<&str> = text.lines().filter(|l| !l.contains("bad 1")).collect();
        let p = parse_report(&cut.join("\n"));
        assert!(
            matches!(p.integrity, Integrity::Corrupted(ref m) if m.contains("count")),
            "{:?}",
            p.integrity
        );
    }

    #[test]
    fn detects_altered_line() {
        let text = sample().replace("bad 1", "bad 7");
        let p = parse_report(&text);
        assert!(
            matches!(p.integrity, Integrity::Corrupted(ref m) if m.contains("CRC")),
            "{:?}",
            p.integrity
        );
    }

    #[test]
    fn detects_truncation() {
        let text = sample();
        let cut = &text[..text.find("{\"type\":\"end\"").unwrap()];
        let p = parse_report(cut);
        assert!(matches!(p.integrity, Integrity::Truncated(_)));
    }

    #[test]
    fn detects_garbled_record() {
        let text = sample().replacen("{\"type\":\"error\"", "{\"type\":\"err", 1);
        let p = parse_report(&text);
        assert!(
            matches!(p.integrity, Integrity::Corrupted(ref m) if m.contains("parse")),
            "{:?}",
            p.integrity
        );
    }

    #[test]
    fn record_text_strips_noise_prefix() {
        assert_eq!(
            record_text("\x1b[0m{\"type\":\"x\"}\r"),
            Some("{\"type\":\"x\"}")
        );
        assert_eq!(record_text("plain text"), None);
    }
}
