//! The records of the report format (REPORT-FORMAT.md, schema 1): one JSON object per line.
//!
//! Field names and meanings are fixed by the schema; extra fields are allowed and marked here.
//! Every record serialises with `"type"` first. Hex values are strings (`"0x96000021"`).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// Schema number printed in `begin.schema`.
pub const SCHEMA: u32 = 1;

/// Format a value as the report's hex string (`0x…`, lower case).
pub fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// Parse a report hex string back.
pub fn parse_hex(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u64::from_str_radix(digits, 16).ok()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Begin(Begin),
    Cpu(Cpu),
    Probe(Probe),
    Litmus(Litmus),
    Error(ErrorRec),
    End(End),
}

impl Record {
    pub fn type_name(&self) -> &'static str {
        match self {
            Record::Begin(_) => "begin",
            Record::Cpu(_) => "cpu",
            Record::Probe(_) => "probe",
            Record::Litmus(_) => "litmus",
            Record::Error(_) => "error",
            Record::End(_) => "end",
        }
    }

    /// The record as one line of JSON, without the newline.
    pub fn to_line(&self) -> String {
        // Serialising these plain data types cannot fail (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                r#"{{"type":"error","what":"internal","message":"record encoding failed: {e}"}}"#
            )
        })
    }

    pub fn from_line(line: &str) -> Result<Record, serde_json::Error> {
        serde_json::from_str(line)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Begin {
    pub schema: u32,
    pub version: String,
    pub arch: String,
    pub board: String,
    /// Exception level the probes run at (aarch64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub el: Option<u8>,
    /// Privilege ring the probes run at (x86).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring: Option<u8>,
    /// MIDR_EL1 (hex) or the CPUID vendor/family/model/stepping.
    pub cpu_id: String,
    /// The raw command line / boot arguments.
    pub cmdline: String,
    /// The effective configuration after defaults.
    pub config: Config,
    /// Extra: facts about the platform (entry EL, DTB address, timer frequency, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub platform: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub index: u32,
    /// MPIDR_EL1 or APIC ID, hex.
    pub hwid: String,
    pub online: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Extra: EL (aarch64) the core runs at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub el: Option<u8>,
    /// Extra: whether the core has a usable cycle counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle_counter: Option<bool>,
}

/// Outcome of one probe (`probe.result`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeResult {
    /// No torn value seen.
    Atomic,
    /// A value that no writer wrote was read.
    Torn,
    /// The access faulted (see `fault`).
    Fault,
    /// The operation succeeded as intended.
    Ok,
    /// A counter does not hold the number of successful increments: some were lost (`lost` > 0),
    /// it is over (`excess` > 0), or the halves of a 128-bit counter differ.
    LostUpdates,
    /// No forward progress within the time bound.
    Livelock,
    /// Could not run here (`reason` says why).
    Skipped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Observation consistent with the architecture.
    Ok,
    /// Observation differs from what the architecture requires (QEMU deviation or a core erratum).
    Deviation,
    /// Could not be judged because the probe did not run.
    Skipped,
    /// A litmus outcome the model forbids was observed.
    Violation,
    /// A litmus test with no model verdict (`model` `unknown`): counted, not judged.
    Unjudged,
}

/// A decoded fault, as printed in `probe.fault`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// `alignment`, `translation`, `permission`, `access-flag`, `external`,
    /// `unsupported-atomic` (aarch64 DFSC 0b110101), `general-protection` (x86 #GP),
    /// `undefined` (aarch64 EC 0x00, x86 #UD) or `other` ([`crate::fault::FaultKind::name`]).
    pub kind: String,
    /// aarch64: ESR_EL1 (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub esr: Option<String>,
    /// aarch64: FAR_EL1 (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub far: Option<String>,
    /// x86: vector number and mnemonic, e.g. `13 #GP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
    /// x86: error code (hex) when the exception pushes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Extra: human description (exception class, DFSC, signal …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub family: String,
    pub name: String,
    pub attr: String,
    pub width: u32,
    /// Bytes from natural alignment (see docs/probes.md for each family).
    pub offset: u32,
    pub op: String,
    pub cpus: Vec<u32>,
    pub iterations: u64,
    pub result: ProbeResult,
    pub counts: BTreeMap<String, u64>,
    /// What the architecture requires or allows here.
    pub expected: String,
    pub verdict: Verdict,
    pub fault: Option<FaultRecord>,
    /// Extra: the rule `expected` comes from (Arm ARM / SDM / APM section).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rule: String,
    /// Why the probe was skipped (`result` = `skipped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
    /// Extra: how the arena was mapped (`mapping`, and `share`, `caches`, `mtrr`, `effective`
    /// when they apply).
    #[serde(flatten, default)]
    pub map: MapFields,
}

/// Extra fields of `probe` and `litmus` records: how the arena the record ran on was mapped
/// (boot arguments `mapping=`, `share=`, `caches=`, `mtrr=`; docs/probes.md). `mapping` is on
/// every record the suite emits; the others only where they are not the default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapFields {
    /// Leaf size of the arena alias: `4k`, `2m` or `1g` (empty in reports older than it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mapping: String,
    /// aarch64: shareability of a Normal alias when not `inner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    /// `off` when the data caches were off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caches: Option<String>,
    /// x86: the MTRR type put over the arena (`mtrr=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtrr: Option<String>,
    /// aarch64: the translation granule of the alias (`granule=`) when not `4k`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granule: Option<String>,
    /// x86: the effective memory type, PAT × MTRR (Intel SDM Vol. 3A 13.5.2.2, Table 13-7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<String>,
}

impl MapFields {
    /// The shown suffix for `compare` keys: empty for the default mapping.
    pub fn key_suffix(&self) -> String {
        let mut s = String::new();
        if !self.mapping.is_empty() && self.mapping != "4k" {
            s.push_str(&format!(" map={}", self.mapping));
        }
        for (k, v) in [
            ("share", &self.share),
            ("caches", &self.caches),
            ("mtrr", &self.mtrr),
            ("granule", &self.granule),
        ] {
            if let Some(v) = v {
                s.push_str(&format!(" {k}={v}"));
            }
        }
        s
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramEntry {
    /// Spelled like litmus7, e.g. `1:X0=1; 1:X2=0;`.
    pub outcome: String,
    pub count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelVerdict {
    Allowed,
    Forbidden,
    /// herd7 kinds `Require`: a `forall` condition holds in every execution.
    Required,
    /// No kinds line matched the test (name and digest): not judged.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Litmus {
    pub name: String,
    pub attr: String,
    pub cpus: Vec<u32>,
    pub iterations: u64,
    pub histogram: Vec<HistogramEntry>,
    /// The `exists` clause.
    pub condition: String,
    /// Iterations satisfying `condition`.
    pub observed: u64,
    pub model: ModelVerdict,
    pub verdict: Verdict,
    pub elapsed_ms: u64,
    pub iter_per_s: u64,
    /// Extra: observed outcomes satisfying `condition` per second.
    #[serde(default)]
    pub relaxed_per_s: u64,
    /// Extra: source of `model` (herdtools7 model file / kinds.txt, SDM section).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rule: String,
    /// Extra: why the test did not run (`verdict` = `skipped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Extra: how the arena was mapped ([`MapFields`]).
    #[serde(flatten, default)]
    pub map: MapFields,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRec {
    /// `bootarg`, `cpu`, `probe`, …
    pub what: String,
    /// Says what was wrong and what is accepted.
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Complete,
    Aborted,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// Number of record lines before this one.
    pub records: u64,
    /// CRC-32/ISO-HDLC of those record lines, each followed by `\n`.
    pub crc32: String,
    pub status: RunStatus,
    pub elapsed_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_tag_comes_first_and_round_trips() {
        let r = Record::Error(ErrorRec {
            what: "bootarg".into(),
            message: "x".into(),
        });
        let line = r.to_line();
        assert!(line.starts_with(r#"{"type":"error","#), "{line}");
        assert_eq!(Record::from_line(&line).unwrap(), r);
    }

    #[test]
    fn end_record_spelling() {
        let r = Record::End(End {
            records: 3,
            crc32: hex(0xdead_beef),
            status: RunStatus::Aborted,
            elapsed_ms: 12,
        });
        assert_eq!(
            r.to_line(),
            r#"{"type":"end","records":3,"crc32":"0xdeadbeef","status":"aborted","elapsed_ms":12}"#
        );
    }

    #[test]
    fn probe_enums_spelling() {
        assert_eq!(
            serde_json::to_string(&ProbeResult::LostUpdates).unwrap(),
            r#""lost-updates""#
        );
        assert_eq!(
            serde_json::to_string(&Verdict::Deviation).unwrap(),
            r#""deviation""#
        );
        assert_eq!(
            serde_json::to_string(&ModelVerdict::Forbidden).unwrap(),
            r#""forbidden""#
        );
    }

    #[test]
    fn map_fields_are_flat_and_optional() {
        let mut p = Probe {
            family: "fault".into(),
            name: "x".into(),
            attr: "wb".into(),
            width: 64,
            offset: 0,
            op: "mov".into(),
            cpus: vec![],
            iterations: 1,
            result: ProbeResult::Ok,
            counts: BTreeMap::new(),
            expected: String::new(),
            verdict: Verdict::Ok,
            fault: None,
            rule: String::new(),
            reason: None,
            elapsed_ms: None,
            map: MapFields::default(),
        };
        let old = Record::Probe(p.clone()).to_line();
        assert!(!old.contains("mapping"), "{old}");
        assert_eq!(Record::from_line(&old).unwrap(), Record::Probe(p.clone()));
        p.map.mapping = "2m".into();
        p.map.mtrr = Some("wc".into());
        p.map.effective = Some("wc".into());
        let line = Record::Probe(p.clone()).to_line();
        assert!(
            line.ends_with(r#""mapping":"2m","mtrr":"wc","effective":"wc"}"#),
            "{line}"
        );
        assert_eq!(Record::from_line(&line).unwrap(), Record::Probe(p.clone()));
        assert_eq!(p.map.key_suffix(), " map=2m mtrr=wc");
        // granule=: named when not 4k, and part of the compare key.
        let mut g = p.clone();
        g.map = MapFields {
            mapping: "4k".into(),
            granule: Some("64k".into()),
            ..MapFields::default()
        };
        let line = Record::Probe(g.clone()).to_line();
        assert!(
            line.ends_with(r#""mapping":"4k","granule":"64k"}"#),
            "{line}"
        );
        assert_eq!(Record::from_line(&line).unwrap(), Record::Probe(g.clone()));
        assert_eq!(g.map.key_suffix(), " granule=64k");
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(0x9600_0021), "0x96000021");
        assert_eq!(parse_hex("0x96000021"), Some(0x9600_0021));
        assert_eq!(parse_hex("96000021"), None);
        assert_eq!(parse_hex("0xzz"), None);
    }
}
