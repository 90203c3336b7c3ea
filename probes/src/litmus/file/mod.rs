//! Litmus tests from herdtools7 `.litmus` files, compiled in at build time.
//!
//! `atomprobe litmus FILES` parses the files ([`super::parse`]), translates every thread into an
//! `asm!` block holding the test's own instruction text (registers renamed to operands the
//! compiler allocates, labels to local numeric labels, x86 locations to address operands) and
//! writes a Rust module of [`FileTest`]s. The probes crate's build script includes that module
//! when `ATOMPROBE_LITMUS_GEN` names it (`probes/build.rs`); without it the build script
//! generates the module itself, with the same generator, from the built-in tests'
//! files (`probes/litmus/<arch>`). See ARCHITECTURE.md ("Litmus files") for why code generation.
//!
//! At run time a [`FileTest`] is prepared ([`prepare`]) from its own source text, parsed again
//! by the same no_std parser: locations, their types and initial values, which operand slot of
//! which thread holds which register or address, the outcome's columns and the condition. The
//! runner ([`run`]) gives every instance fresh locations, written with their initial values
//! before the batch (see `run.rs` for why that is the test's initial state).

pub mod run;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::parse::{self, Atom, Init, LitmusFile, Quant, Value};
use crate::record::ModelVerdict;
pub use atomprobe_litmus::norm::{canonical_reg, digest, normalised, x86_family};
pub use atomprobe_litmus::MAX_IO;

/// Most columns (registers and locations) of an outcome.
pub const MAX_COLS: usize = 12;

/// One thread of a generated test: runs the thread's code once with `io` holding the operand
/// slots' initial values (registers, addresses), and leaves their final values there.
///
/// # Safety
/// Every address slot must hold the address of a location valid for the accesses the test makes.
pub type FileBody = unsafe fn(io: &mut [u64; MAX_IO]);

/// A test generated from a `.litmus` file.
pub struct FileTest {
    /// Its name (the file's header).
    pub name: &'static str,
    /// The file's text, parsed again at run time.
    pub source: &'static str,
    pub arch: crate::attr::Arch,
    /// One body per thread.
    pub bodies: &'static [FileBody],
    /// Per thread, what each operand slot holds: a register name as the test spells it in its
    /// init block and condition (`X0`, `rax`), or `&x`, the address of location `x`.
    pub slots: &'static [&'static [&'static str]],
    /// CPU features its instructions need (checked before it runs; skipped with the reason).
    pub needs: &'static [crate::rules::atomicity::Feature],
    /// From the kinds file whose line matched the test's name and digest, else `Unknown`.
    pub model: ModelVerdict,
    /// Where `model` comes from (or why it is unknown).
    pub rule: &'static str,
}

/// A location of a prepared test.
#[derive(Clone, Debug, PartialEq)]
pub struct Loc {
    pub name: String,
    /// Bytes (1, 2, 4, 8), from its type (`int`: 4, the default).
    pub size: usize,
    pub init: InitVal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitVal {
    Int(i64),
    /// The address of location `k` of the same instance.
    Addr(usize),
}

/// One column of the outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Col {
    Reg {
        thread: usize,
        slot: usize,
        name: String,
    },
    Loc {
        loc: usize,
    },
}

/// What the runner needs, derived from the source text.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub file: LitmusFile,
    pub locs: Vec<Loc>,
    /// Per thread, per slot, the initial value.
    pub io_init: Vec<Vec<InitVal>>,
    pub cols: Vec<Col>,
}

/// Column values that are a location's address are stored as `ADDR + loc` (no real value of a
/// register is that close to `i64::MIN` in these tests).
pub const ADDR: i64 = i64::MIN / 2;

/// Bytes of a location of C type `ty` (`None`: `int`), or `None` if the type is not known.
pub fn type_size(ty: Option<&str>) -> Option<usize> {
    let Some(t) = ty else { return Some(4) };
    let t = t.trim();
    if t.ends_with('*') {
        return Some(8);
    }
    Some(match t {
        "int8_t" | "uint8_t" | "char" | "unsigned char" => 1,
        "int16_t" | "uint16_t" | "short" | "unsigned short" => 2,
        "int" | "int32_t" | "uint32_t" | "unsigned" | "unsigned int" => 4,
        "int64_t" | "uint64_t" | "long" | "unsigned long" | "intptr_t" | "uintptr_t" => 8,
        _ => return None,
    })
}

fn loc_index(locs: &mut Vec<Loc>, name: &str) -> usize {
    if let Some(k) = locs.iter().position(|l| l.name == name) {
        return k;
    }
    locs.push(Loc {
        name: name.to_string(),
        size: 4,
        init: InitVal::Int(0),
    });
    locs.len() - 1
}

/// Derive what the runner needs from `test`'s source; an error says what does not fit.
pub fn prepare(test: &FileTest) -> Result<Prepared, String> {
    let file = parse::parse(test.source).map_err(|e| e.display(test.name))?;
    prepare_parsed(file, test.slots)
}

/// [`prepare`] from a parsed file and the generator's slot lists.
pub fn prepare_parsed(file: LitmusFile, slots: &[&[&str]]) -> Result<Prepared, String> {
    let arch = file.arch;
    let mut locs: Vec<Loc> = Vec::new();
    // Locations first from the init block (their types and values), then every other mention.
    for Init {
        target, ty, value, ..
    } in &file.init
    {
        if let Atom::Loc(name) = target {
            let size = type_size(ty.as_deref()).ok_or_else(|| {
                format!(
                    "location {name}: C type `{}` not supported",
                    ty.as_deref().unwrap_or("")
                )
            })?;
            let k = loc_index(&mut locs, name);
            locs[k].size = size;
            locs[k].init = match value {
                Value::Int(v) => InitVal::Int(*v),
                Value::Addr(a) => {
                    // Pointers are 8 bytes whatever was written.
                    locs[k].size = 8;
                    InitVal::Addr(loc_index(&mut locs, a))
                }
            };
        }
    }
    for i in &file.init {
        if let Value::Addr(a) = &i.value {
            loc_index(&mut locs, a);
        }
    }
    let mut atoms = Vec::new();
    for a in &file.locations {
        if !atoms.contains(a) {
            atoms.push(a.clone());
        }
    }
    file.cond.prop.atoms(&mut atoms);
    for t in slots.iter() {
        for s in t.iter() {
            if let Some(l) = s.strip_prefix('&') {
                loc_index(&mut locs, l);
            }
        }
    }
    if slots.len() != file.threads.len() {
        return Err(format!(
            "{} threads in the file, {} generated",
            file.threads.len(),
            slots.len()
        ));
    }
    // Initial value of every slot.
    let mut io_init = Vec::new();
    for (t, ss) in slots.iter().enumerate() {
        let mut v = Vec::new();
        for s in ss.iter() {
            let init = if let Some(l) = s.strip_prefix('&') {
                InitVal::Addr(loc_index(&mut locs, l))
            } else {
                let found = file.init.iter().find(|i| {
                    matches!(&i.target, Atom::Reg { thread, reg }
                        if *thread == t && canonical_reg(arch, reg) == canonical_reg(arch, s))
                });
                match found.map(|i| &i.value) {
                    None => InitVal::Int(0),
                    Some(Value::Int(x)) => InitVal::Int(*x),
                    Some(Value::Addr(a)) => InitVal::Addr(loc_index(&mut locs, a)),
                }
            };
            v.push(init);
        }
        io_init.push(v);
    }
    let mut cols = Vec::new();
    for a in &atoms {
        match a {
            Atom::Loc(l) => {
                let loc = loc_index(&mut locs, l);
                cols.push(Col::Loc { loc });
            }
            Atom::Reg { thread, reg } => {
                let Some(ss) = slots.get(*thread) else {
                    return Err(format!(
                        "the condition names thread {thread}, which the test does not have"
                    ));
                };
                let want = canonical_reg(arch, reg);
                let slot = ss
                    .iter()
                    .position(|s| !s.starts_with('&') && canonical_reg(arch, s) == want);
                match slot {
                    Some(slot) => cols.push(Col::Reg {
                        thread: *thread,
                        slot,
                        name: reg.clone(),
                    }),
                    None => {
                        // A register the thread never uses keeps its initial value: a column of
                        // its own would be constant; keep it, read from a slot of none.
                        return Err(format!(
                            "the condition reads {thread}:{reg}, which thread {thread}'s code never uses"
                        ));
                    }
                }
            }
        }
    }
    if cols.len() > MAX_COLS {
        return Err(format!(
            "{} outcome columns, at most {MAX_COLS}",
            cols.len()
        ));
    }
    if file.filter.is_some() {
        return Err("`filter` clauses are not supported".into());
    }
    Ok(Prepared {
        file,
        locs,
        io_init,
        cols,
    })
}

impl Prepared {
    /// An outcome as litmus7 spells it, e.g. `0:X0=1; [x]=2;`.
    pub fn outcome(&self, vals: &[i64]) -> String {
        let mut s = String::new();
        for (c, v) in self.cols.iter().zip(vals) {
            if !s.is_empty() {
                s.push(' ');
            }
            let val = if *v >= ADDR && *v < ADDR + self.locs.len() as i64 {
                self.locs[(*v - ADDR) as usize].name.clone()
            } else {
                format!("{v}")
            };
            match c {
                Col::Reg { thread, name, .. } => s.push_str(&format!("{thread}:{name}={val};")),
                Col::Loc { loc } => s.push_str(&format!("[{}]={val};", self.locs[*loc].name)),
            }
        }
        s
    }

    /// Whether an outcome satisfies the condition's proposition.
    pub fn satisfies(&self, vals: &[i64]) -> bool {
        let value = |a: &Atom| -> i64 {
            for (c, v) in self.cols.iter().zip(vals) {
                match (c, a) {
                    (Col::Loc { loc }, Atom::Loc(l)) if self.locs[*loc].name == *l => return *v,
                    (Col::Reg { thread, name, .. }, Atom::Reg { thread: t, reg })
                        if thread == t && name == reg =>
                    {
                        return *v
                    }
                    _ => {}
                }
            }
            // Every atom of the condition is a column (see `prepare_parsed`).
            i64::MAX
        };
        let addr = |l: &str| -> i64 {
            self.locs
                .iter()
                .position(|x| x.name == l)
                .map_or(i64::MAX - 1, |k| ADDR + k as i64)
        };
        self.file.cond.prop.eval(&value, &addr)
    }

    /// The condition as litmus7 prints it.
    pub fn condition(&self) -> String {
        self.file.cond.to_string()
    }
}

/// The record verdict for `observed` of `iterations` under `model` and the condition's
/// quantifier, with the reason when it cannot be judged. herd7's kinds: for `exists P`,
/// `Forbidden` means no execution satisfies P, `Allowed` that some may; for `forall P`,
/// `Required` means every execution does.
pub fn judge(
    quant: Quant,
    model: ModelVerdict,
    observed: u64,
    iterations: u64,
) -> (crate::record::Verdict, Option<String>) {
    use crate::record::Verdict;
    match (quant, model) {
        (_, ModelVerdict::Unknown) => (
            Verdict::Unjudged,
            Some("no model verdict: no kinds line matches this test's name and digest".into()),
        ),
        (Quant::Exists, ModelVerdict::Forbidden) if observed > 0 => (Verdict::Violation, None),
        (Quant::Exists, ModelVerdict::Forbidden | ModelVerdict::Allowed) => (Verdict::Ok, None),
        (Quant::Forall, ModelVerdict::Required) if observed < iterations => {
            (Verdict::Violation, None)
        }
        (Quant::Forall, ModelVerdict::Required) => (Verdict::Ok, None),
        (q, m) => (
            Verdict::Unjudged,
            Some(format!(
                "no rule here for a `{}` condition with model `{m:?}`",
                q.word()
            )),
        ),
    }
}

// The generated module (or the empty default): `pub static FILE_TESTS: &[FileTest]`.
include!(concat!(env!("OUT_DIR"), "/litmus_gen.rs"));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Verdict;

    const SRC: &str = "AArch64 T\n{ uint8_t z=3; 0:X1=x; 1:X1=x; 1:X5=7; }\n P0 | P1 ;\n \
        MOV W0,#1 | LDR W0,[X1] ;\n STR W0,[X1] | MOV X2,X1 ;\n\
        locations [z;]\nexists (1:X0=1 /\\ 1:X2=x /\\ ~[x]=0)\n";

    fn prepared() -> Prepared {
        let f = parse::parse(SRC).unwrap();
        // The generator's slot lists for this test (register order of first use).
        prepare_parsed(f, &[&["X0", "X1"], &["X0", "X1", "X2", "X5"]]).unwrap()
    }

    #[test]
    fn locations_slots_and_columns() {
        let p = prepared();
        let names: Vec<&str> = p.locs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["z", "x"]);
        assert_eq!(p.locs[0].size, 1);
        assert_eq!(p.locs[0].init, InitVal::Int(3));
        assert_eq!(p.locs[1].size, 4);
        assert_eq!(p.io_init[0], [InitVal::Int(0), InitVal::Addr(1)]);
        assert_eq!(
            p.io_init[1],
            [
                InitVal::Int(0),
                InitVal::Addr(1),
                InitVal::Int(0),
                InitVal::Int(7)
            ]
        );
        // `locations` first, then the condition's atoms in order.
        assert_eq!(p.cols.len(), 4);
        assert_eq!(p.cols[0], Col::Loc { loc: 0 });
        assert!(matches!(&p.cols[1], Col::Reg { thread: 1, slot: 0, name } if name == "X0"));
        assert!(matches!(
            &p.cols[2],
            Col::Reg {
                thread: 1,
                slot: 2,
                ..
            }
        ));
        assert_eq!(p.cols[3], Col::Loc { loc: 1 });
    }

    #[test]
    fn outcome_and_condition_with_addresses() {
        let p = prepared();
        let vals = [3, 1, ADDR + 1, 1];
        assert_eq!(p.outcome(&vals), "[z]=3; 1:X0=1; 1:X2=x; [x]=1;");
        assert!(p.satisfies(&vals));
        // X2 holding z's address, or x still 0: not satisfied.
        assert!(!p.satisfies(&[3, 1, ADDR, 1]));
        assert!(!p.satisfies(&[3, 1, ADDR + 1, 0]));
        assert_eq!(p.condition(), "exists (1:X0=1 /\\ 1:X2=x /\\ ~[x]=0)");
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let f = parse::parse(SRC).unwrap();
        // The condition reads 1:X2, which the (wrong) slot list lacks.
        let e = prepare_parsed(f.clone(), &[&["X0", "X1"], &["X0", "X1"]]).unwrap_err();
        assert!(e.contains("1:X2"), "{e}");
        let bad = SRC.replace("uint8_t z=3", "float z=3");
        let e = prepare_parsed(
            parse::parse(&bad).unwrap(),
            &[&["X0", "X1"], &["X0", "X1", "X2"]],
        )
        .unwrap_err();
        assert!(e.contains("`float` not supported"), "{e}");
    }

    #[test]
    fn verdicts_follow_kinds_and_quantifier() {
        use ModelVerdict::*;
        assert_eq!(judge(Quant::Exists, Forbidden, 1, 10).0, Verdict::Violation);
        assert_eq!(judge(Quant::Exists, Forbidden, 0, 10).0, Verdict::Ok);
        assert_eq!(judge(Quant::Exists, Allowed, 5, 10).0, Verdict::Ok);
        assert_eq!(judge(Quant::Forall, Required, 10, 10).0, Verdict::Ok);
        assert_eq!(judge(Quant::Forall, Required, 9, 10).0, Verdict::Violation);
        let (v, why) = judge(Quant::Exists, Unknown, 3, 10);
        assert_eq!(v, Verdict::Unjudged);
        assert!(why.unwrap().contains("no kinds line"));
        assert_eq!(
            judge(Quant::NotExists, Forbidden, 0, 10).0,
            Verdict::Unjudged
        );
    }
}
