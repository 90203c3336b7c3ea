//! `atomprobe litmus --states FILE`: herd7's list of the final states a test may reach.
//!
//! herd7 prints, per test (herdtools7 `herd/top_herd.ml`, `pp_stats`):
//!
//! ```text
//! Test MP Allowed                  <- name, and the condition's kind (exists: Allowed,
//! States 3                            ~exists: Forbidden, forall: Required)
//! 1:X0=0; 1:X2=0;                  <- one line per final state the model allows: `loc=v;`
//! 1:X0=0; 1:X2=1;                     bindings, registers `P:R`, locations `[x]` (or `x`
//! 1:X0=1; 1:X2=1;                     with -brackets false), values decimal (hex with -hexa)
//! No                               <- Ok / No (the condition validated or not), Undef
//! Witnesses
//! Positive: 0 Negative: 3
//! Condition exists (1:X0=1 /\ 1:X2=0)
//! Observation MP Never 0 3
//! Time MP 0.01                     <- optional
//! Hash=…                           <- optional
//! ```
//!
//! Blocks of many tests follow one another; lines outside a block are skipped.
//!
//! **Matching** (documented in docs/probes.md): a test is matched by name. Each state is
//! projected onto the test's outcome columns (the registers and locations of `locations` and
//! the condition); a column the state does not show matches any value, a binding of a column
//! the test does not have is ignored. An observed outcome is allowed iff it agrees with some
//! state on every column both show. Since herd7's states are all the final states the model
//! allows, projection can only make the allowed set larger: an outcome outside it is outside
//! herd7's, never a false violation. Values are compared as the column's type reads them
//! (`probes::litmus::file::ValType`), so herd7's `-hexa` spelling (unsigned, masked) and its
//! decimal one (signed types sign-extended) both match; a location name is an address.

use atomprobe_litmus::Kind;
use probes::litmus::file::{canonical_reg, Col, Prepared, ADDR};
use probes::litmus::parse::{parse_int, FileArch, LitmusFile, Quant};

/// A value in a state line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateVal {
    Int(i64),
    /// A location's address, by name.
    Sym(String),
}

/// One test's block.
#[derive(Clone, Debug, PartialEq)]
pub struct TestStates {
    pub name: String,
    /// The kind on the `Test` line: `Allowed` (exists), `Forbidden` (~exists), `Required`
    /// (forall) or `Final`.
    pub kind: String,
    /// `Ok` (true), `No` (false); `None` for `Undef` or a missing line.
    pub ok: Option<bool>,
    /// Each state: (column key, value); keys are `P:R` with R canonical, or a location name.
    pub states: Vec<Vec<(String, StateVal)>>,
    /// The `Condition` line's text, if any.
    pub condition: Option<String>,
    /// Line of its `Test` line (1-based).
    pub line: usize,
}

/// A parsed states file.
#[derive(Clone, Debug, PartialEq)]
pub struct StatesFile {
    pub path: String,
    pub tests: Vec<TestStates>,
}

fn at(path: &str, line: usize, msg: String) -> String {
    format!("{path}:{line}: {msg}")
}

/// The column key of a binding's left-hand side: `0:X1` → `0:X1` (register canonical for
/// `arch`), `[x]`/`x` → `x`.
fn key_of(lhs: &str, arch: Option<FileArch>) -> Option<String> {
    let lhs = lhs.trim();
    if let Some((t, r)) = lhs.split_once(':') {
        let t: usize = t.trim().parse().ok()?;
        let r = r.trim();
        if r.is_empty() || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        let r = match arch {
            Some(a) => canonical_reg(a, r),
            None => r.to_string(),
        };
        return Some(format!("{t}:{r}"));
    }
    let l = lhs
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(lhs)
        .trim();
    let ok = l
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && l.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    ok.then(|| l.to_string())
}

/// One state line: `loc=v;` bindings.
fn parse_state(line: &str) -> Result<Vec<(String, StateVal)>, String> {
    let mut out = Vec::new();
    for b in line.split(';') {
        let b = b.trim();
        if b.is_empty() {
            continue;
        }
        if b.starts_with('~') || b.to_ascii_lowercase().starts_with("fault") {
            return Err(format!(
                "`{b}`: fault entries are not supported (atomprobe's tests take no faults)"
            ));
        }
        let Some((lhs, rhs)) = b.split_once('=') else {
            return Err(format!(
                "expected `LOC=VALUE;` (e.g. `0:X0=1;` or `[x]=2;`), found `{b}`"
            ));
        };
        // Keys are kept as written here; registers are made canonical per test (the
        // architecture is the test's).
        let Some(key) = key_of(lhs, None) else {
            return Err(format!(
                "`{lhs}`: expected a register `P:R` or a location `[x]` before `=`"
            ));
        };
        let r = rhs.trim();
        let v = if let Some(v) = parse_int(r) {
            StateVal::Int(v)
        } else if key_of(r, None).is_some_and(|k| !k.contains(':')) {
            StateVal::Sym(r.to_string())
        } else {
            return Err(format!(
                "`{r}`: expected a value (decimal, 0x hex, or a location name)"
            ));
        };
        out.push((key, v));
    }
    if out.is_empty() {
        return Err("an empty state line (expected `LOC=VALUE;` bindings)".into());
    }
    Ok(out)
}

/// Parse herd7's output; errors name the file and line and what was expected.
pub fn parse(text: &str, path: &str) -> Result<StatesFile, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut tests: Vec<TestStates> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim();
        let Some(rest) = l.strip_prefix("Test ") else {
            i += 1;
            continue;
        };
        let line = i + 1;
        let mut w = rest.split_whitespace();
        let (Some(name), Some(kind)) = (w.next(), w.next()) else {
            return Err(at(
                path,
                line,
                format!(
                    "expected `Test NAME KIND` (KIND: Allowed, Forbidden, Required), found `{l}`"
                ),
            ));
        };
        if !matches!(kind, "Allowed" | "Forbidden" | "Required" | "Final") {
            return Err(at(
                path,
                line,
                format!("kind `{kind}`: expected Allowed, Forbidden, Required or Final"),
            ));
        }
        if tests.iter().any(|t| t.name == name) {
            return Err(at(path, line, format!("a second block for test {name}")));
        }
        i += 1;
        let sl = lines.get(i).map(|s| s.trim()).unwrap_or("");
        let n: usize = match sl.strip_prefix("States ").map(|n| n.trim().parse()) {
            Some(Ok(n)) => n,
            _ => {
                return Err(at(
                    path,
                    i + 1,
                    format!(
                        "expected `States N` after `Test {name} {kind}`, found {}",
                        if sl.is_empty() {
                            "nothing".to_string()
                        } else {
                            format!("`{sl}`")
                        }
                    ),
                ))
            }
        };
        i += 1;
        let mut states = Vec::new();
        for k in 0..n {
            let Some(s) = lines.get(i) else {
                return Err(at(
                    path,
                    i + 1,
                    format!("expected {n} state lines after `States {n}`, found {k}"),
                ));
            };
            states.push(parse_state(s).map_err(|e| at(path, i + 1, e))?);
            i += 1;
        }
        let okl = lines.get(i).map(|s| s.trim()).unwrap_or("");
        let ok = match okl.strip_prefix("Loop ").unwrap_or(okl) {
            "Ok" => Some(true),
            "No" => Some(false),
            "Undef" => None,
            _ => {
                return Err(at(
                    path,
                    i + 1,
                    format!(
                    "expected `Ok`, `No` or `Undef` after the {n} states of {name}, found `{okl}`"
                ),
                ))
            }
        };
        i += 1;
        let mut condition = None;
        while i < lines.len() && !lines[i].trim().starts_with("Test ") {
            if let Some(c) = lines[i].trim().strip_prefix("Condition ") {
                condition = Some(c.to_string());
            }
            i += 1;
        }
        tests.push(TestStates {
            name: name.to_string(),
            kind: kind.to_string(),
            ok,
            states,
            condition,
            line,
        });
    }
    if tests.is_empty() {
        return Err(format!(
            "{path}: no `Test NAME KIND` block: expected herd7's output (`herd7 -model … FILE.litmus > {path}`)"
        ));
    }
    Ok(StatesFile {
        path: path.to_string(),
        tests,
    })
}

impl StatesFile {
    /// Read and parse `path`.
    pub fn load(path: &std::path::Path) -> Result<StatesFile, String> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("--states {shown}: {e}"))?;
        parse(&text, &shown)
    }

    pub fn get(&self, name: &str) -> Option<&TestStates> {
        self.tests.iter().find(|t| t.name == name)
    }

    /// Text for the records' `rule` and `reason`.
    pub fn source(&self) -> String {
        format!("herd7 states file {}", self.path)
    }
}

impl TestStates {
    /// The model verdict herd7's `Ok`/`No` gives for the file's condition `quant`, or an error
    /// when the block's kind does not fit that quantifier (not the same test).
    pub fn model(&self, quant: Quant) -> Result<Kind, String> {
        let want = match quant {
            Quant::Exists => "Allowed",
            Quant::NotExists => "Forbidden",
            Quant::Forall => "Required",
        };
        if self.kind != want {
            return Err(format!(
                "herd7's block for {} is `{}`, but the file's condition is `{}` (herd7 writes `{want}` for it): not the same test",
                self.name,
                self.kind,
                quant.word()
            ));
        }
        Ok(match (quant, self.ok) {
            (_, None) => Kind::Unknown,
            (Quant::Exists, Some(true)) => Kind::Allowed,
            (Quant::Exists, Some(false)) => Kind::Forbidden,
            (Quant::NotExists, Some(true)) => Kind::Forbidden,
            (Quant::NotExists, Some(false)) => Kind::Allowed,
            (Quant::Forall, Some(true)) => Kind::Required,
            (Quant::Forall, Some(false)) => Kind::Allowed,
        })
    }

    /// The states projected onto `p`'s shown columns (see the module documentation), values
    /// cast to each column's type, addresses as `ADDR + index`.
    pub fn project(&self, f: &LitmusFile, p: &Prepared) -> Result<Vec<Vec<Option<i64>>>, String> {
        let keys: Vec<String> = p.cols[..p.shown]
            .iter()
            .map(|c| match c {
                Col::Reg { thread, name, .. } => {
                    format!("{thread}:{}", canonical_reg(f.arch, name))
                }
                Col::Loc { loc } => p.locs[*loc].name.clone(),
            })
            .collect();
        let mut common = false;
        let mut rows = Vec::new();
        for st in &self.states {
            let mut row = vec![None; keys.len()];
            for (k, v) in st {
                let key = match k.split_once(':') {
                    Some((t, r)) => format!("{t}:{}", canonical_reg(f.arch, r)),
                    None => k.clone(),
                };
                let Some(c) = keys.iter().position(|x| *x == key) else {
                    continue;
                };
                common = true;
                row[c] = Some(match v {
                    StateVal::Int(x) => p.col_types[c].cast(*x),
                    StateVal::Sym(l) => {
                        let Some(k) = p.locs.iter().position(|x| x.name == *l) else {
                            return Err(format!(
                                "herd7's state gives {key}={l}, but {} has no location {l}",
                                self.name
                            ));
                        };
                        ADDR + k as i64
                    }
                });
            }
            rows.push(row);
        }
        if !common && !self.states.is_empty() {
            return Err(format!(
                "herd7's states for {} show none of its outcome columns ({}): nothing to match",
                self.name,
                keys.join(", ")
            ));
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use probes::litmus::file::prepare_parsed;
    use probes::litmus::parse::parse as parse_litmus;

    /// herd7's output for two tests, as `herd/top_herd.ml` prints it (hand-written from that
    /// code until herd7 is built here; fixtures from a real herd7 are in
    /// host/tests/fixtures/states when present).
    const TWO: &str = "\
Test MP Allowed
States 3
1:X0=0; 1:X2=0;
1:X0=0; 1:X2=1;
1:X0=1; 1:X2=1;
No
Witnesses
Positive: 0 Negative: 3
Condition exists (1:X0=1 /\\ 1:X2=0)
Observation MP Never 0 3
Time MP 0.01
Hash=211d5b298572012a0869d4ded6a40b7f

Test CO-MIXED-20cc+H Allowed
States 2
0:X2=0x201; [x]=0x202;
0:X2=0x202; [x]=0x202;
No
Witnesses
Positive: 0 Negative: 2
Condition exists ([x]=0x202 /\\ 0:X2=0x201)
Observation CO-MIXED-20cc+H Never 0 2
";

    #[test]
    fn parses_blocks() {
        let f = parse(TWO, "out.txt").unwrap();
        assert_eq!(f.tests.len(), 2);
        let mp = f.get("MP").unwrap();
        assert_eq!(mp.kind, "Allowed");
        assert_eq!(mp.ok, Some(false));
        assert_eq!(mp.states.len(), 3);
        assert_eq!(
            mp.states[2],
            [
                ("1:X0".into(), StateVal::Int(1)),
                ("1:X2".into(), StateVal::Int(1))
            ]
        );
        assert_eq!(mp.line, 1);
        assert_eq!(mp.model(Quant::Exists).unwrap(), Kind::Forbidden);
        assert!(mp
            .model(Quant::Forall)
            .unwrap_err()
            .contains("not the same test"));
        let co = f.get("CO-MIXED-20cc+H").unwrap();
        assert_eq!(co.line, 14);
        assert_eq!(co.states[0][1], ("x".into(), StateVal::Int(0x202)));
        assert_eq!(
            co.condition.as_deref(),
            Some("exists ([x]=0x202 /\\ 0:X2=0x201)")
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            (
                "Test MP Allowed\nStates x\n",
                "out.txt:2: expected `States N`",
            ),
            (
                "Test MP Allowed\nStates 2\n1:X0=0;\n",
                "out.txt:4: expected 2 state lines",
            ),
            (
                "Test MP Allowed\nStates 1\n1:X0 0;\nNo\n",
                "out.txt:3: expected `LOC=VALUE;`",
            ),
            (
                "Test MP Allowed\nStates 1\n1:X0=zz+1;\nNo\n",
                "out.txt:3: `zz+1`",
            ),
            (
                "Test MP Allowed\nStates 1\n1:X0=1;\nMaybe\n",
                "out.txt:4: expected `Ok`",
            ),
            ("Test MP Perhaps\n", "out.txt:1: kind `Perhaps`"),
            ("Test MP\n", "out.txt:1: expected `Test NAME KIND`"),
            (
                "Test MP Allowed\nStates 1\n1:X0=1; ~Fault(P0,x);\nOk\n",
                "out.txt:3: `~Fault(P0,x)`: fault entries",
            ),
            (
                "Test A Allowed\nStates 0\nNo\nTest A Allowed\nStates 0\nNo\n",
                "out.txt:4: a second block",
            ),
            ("just text\n", "no `Test NAME KIND` block"),
        ];
        for (text, want) in cases {
            let e = parse(text, "out.txt").unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn projection_casts_and_matches_columns() {
        let src = "AArch64 CO-MIXED-20cc+H\n{ uint16_t x = 0; uint16_t 0:X2 = 0; 0:X5 = x; \
                   1:X5 = x; 0:X1 = 0x01; uint16_t 1:X1 = 0x0202; }\n P0 | P1 ;\n \
                   STRB W1,[X5] | STRH W1,[X5] ;\n LDRH W2,[X5] | ;\n\
                   exists (x=0x0202 /\\ 0:X2=0x0201)\n";
        let lf = parse_litmus(src).unwrap();
        let p = prepare_parsed(lf.clone(), &[&["X1", "X5", "X2"], &["X1", "X5"]]).unwrap();
        let f = parse(TWO, "out.txt").unwrap();
        let rows = f.get("CO-MIXED-20cc+H").unwrap().project(&lf, &p).unwrap();
        // Columns: [x], 0:X2 (the condition's order).
        assert_eq!(
            rows,
            [[Some(0x202), Some(0x201)], [Some(0x202), Some(0x202)]]
        );
        // A state of other columns only: refused; an extra column: ignored; a missing one: any.
        let other = parse("Test T Allowed\nStates 1\n9:X0=1;\nOk\n", "o").unwrap();
        assert!(other.tests[0]
            .project(&lf, &p)
            .unwrap_err()
            .contains("none of its outcome columns"));
        let some = parse("Test T Allowed\nStates 1\n0:X2=-1; 1:X7=3;\nOk\n", "o").unwrap();
        // -1 as a uint16_t column reads 0xffff.
        assert_eq!(
            some.tests[0].project(&lf, &p).unwrap(),
            [[None, Some(0xffff)]]
        );
    }
}
