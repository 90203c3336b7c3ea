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

/// What the runner hands a thread's code for one instance of a batch.
///
/// The body loads every operand from `init` and adds `off` to the address slots
/// ([`FileTest::addr`]) itself: the per-instance work is one store of `off` by the runner and a
/// load (and an add) per operand in the body, no copy of the slots (under QEMU TCG each of those
/// instructions costs about as much as one of the test's; issue 14, `docs/probes.md`).
#[repr(C)]
pub struct Frame {
    /// Every operand slot's initial value for the batch's first instance: register values from
    /// the init block, and the addresses of that instance's locations.
    pub init: [u64; MAX_IO],
    /// Bytes from the batch's first instance to this one's locations.
    pub off: u64,
}

/// One thread of a generated test: runs the thread's code once from `frame` and stores the final
/// values of its kept registers ([`FileTest::kept`], in that order) to `out[0..]`.
///
/// # Safety
/// Every address slot plus `frame.off` must be the address of a location valid for the accesses
/// the test makes, and `out` must be valid for writes of as many `u64` as the thread keeps.
pub type FileBody = unsafe fn(frame: &Frame, out: *mut u64);

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
    /// Per thread, per slot: whether it starts as a location's address (the body adds
    /// [`Frame::off`]); must agree with [`prepare`]'s reading of the init block.
    pub addr: &'static [&'static [bool]],
    /// Per thread, the slots whose final values the body stores to `out`, in that order: the
    /// registers the outcome reads.
    pub kept: &'static [&'static [usize]],
    /// Whether some instruction may access more than 4 bytes of memory (the generator's
    /// conservative reading, `atomprobe_litmus::gen::wide_access`); if none does and every
    /// location is at most 4 bytes, the runner puts locations 4 bytes apart instead of 8.
    pub wide: bool,
    /// CPU features its instructions need (checked before it runs; skipped with the reason).
    pub needs: &'static [crate::rules::atomicity::Feature],
    /// From the kinds file whose line matched the test's name and digest, else `Unknown`.
    pub model: ModelVerdict,
    /// Where `model` comes from (or why it is unknown).
    pub rule: &'static str,
    /// herd7's allowed final states for this test (`atomprobe litmus --states FILE`), if given.
    pub states: Option<&'static FileStates>,
}

/// herd7's list of the final states a test may reach, projected by the host onto the test's
/// outcome columns ([`Prepared::cols`], values normalised by [`ValType::cast`]; location
/// addresses as [`ADDR`] + index). An observed outcome that matches no state is a violation,
/// whatever the condition says ([`summarise`]).
#[derive(Debug)]
pub struct FileStates {
    /// Where they come from (`herd7 states file PATH (--states)`), for `rule` and `reason`.
    pub source: &'static str,
    /// One row per allowed state, one entry per outcome column: `None` where herd7's state does
    /// not show that column (any value matches).
    pub states: &'static [&'static [Option<i64>]],
}

/// A location of a prepared test.
#[derive(Clone, Debug, PartialEq)]
pub struct Loc {
    pub name: String,
    /// Bytes (1, 2, 4, 8), from its type (`int`: 4, the default). The runner gives every
    /// location an 8-byte slot (4 bytes when no access is wider, [`FileTest::wide`]), so an
    /// access at an offset inside it (`LDRB W0,[X1,#1]` on a `uint16_t`) stays inside it.
    pub size: usize,
    /// How its value reads (signedness and width).
    pub ty: ValType,
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

/// How a column's value reads: its C type's width and signedness. herd7 prints a value of a
/// narrower type masked (unsigned) or sign-extended (signed), a 64-bit unsigned one unsigned, and
/// an untyped location or register as `int` (herdtools7 `herd/archExtra_herd.ml`
/// `cast_for_pp_with_base`, `lib/testType.ml` `default = "int"`, `is_signed`); atomprobe reads
/// and prints values the same way, so outcomes line up with herd7's and litmus7's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValType {
    /// Bytes: 1, 2, 4 or 8.
    pub size: usize,
    pub signed: bool,
}

impl ValType {
    /// `int`: what an untyped location or register is.
    pub const INT: ValType = ValType {
        size: 4,
        signed: true,
    };
    /// A pointer: 64 bits, printed as the location it points to.
    pub const PTR: ValType = ValType {
        size: 8,
        signed: false,
    };

    /// The type of C type `ty` (`None`: `int`), or `None` if it is not known.
    pub fn of(ty: Option<&str>) -> Option<ValType> {
        let size = type_size(ty)?;
        let t = ty.unwrap_or("int").trim();
        if t.ends_with('*') {
            return Some(ValType::PTR);
        }
        // herdtools7 lib/testType.ml `is_signed`; `char` is signed there too.
        let signed = matches!(
            t,
            "int"
                | "long"
                | "int32_t"
                | "char"
                | "int8_t"
                | "short"
                | "int16_t"
                | "int64_t"
                | "intptr_t"
        );
        Some(ValType { size, signed })
    }

    /// `v` read as this type: the low `size` bytes, sign-extended if signed.
    pub fn cast(self, v: i64) -> i64 {
        if self.size >= 8 {
            return v;
        }
        let bits = self.size as u32 * 8;
        let low = (v as u64) & ((1u64 << bits) - 1);
        if self.signed && (low >> (bits - 1)) & 1 == 1 {
            (low | !((1u64 << bits) - 1)) as i64
        } else {
            low as i64
        }
    }

    /// `v` (already cast) in decimal, as herd7 prints it (a 64-bit unsigned value unsigned).
    pub fn show(self, v: i64) -> String {
        if self.size >= 8 && !self.signed {
            format!("{}", v as u64)
        } else {
            format!("{v}")
        }
    }
}

/// What the runner needs, derived from the source text.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub file: LitmusFile,
    pub locs: Vec<Loc>,
    /// Per thread, per slot, the initial value.
    pub io_init: Vec<Vec<InitVal>>,
    /// The outcome's columns: the `shown` ones (`locations`, then the condition's atoms), then
    /// those only the `filter` reads (observed, never printed; as litmus7's "observed" and
    /// "displayed" locations, herdtools7 `litmus/skelUtil.ml` `get_observed_locs`).
    pub cols: Vec<Col>,
    /// How each column's value reads.
    pub col_types: Vec<ValType>,
    /// How many of `cols` an outcome shows.
    pub shown: usize,
}

/// Column values that are a location's address are stored as `ADDR + loc` (no real value of a
/// register is that close to `i64::MIN` in these tests).
pub const ADDR: i64 = i64::MIN / 2;

/// The C types [`type_size`] knows, for error messages.
pub const TYPES: &str = "int8_t, uint8_t, char, int16_t, uint16_t, short, int, int32_t, \
    uint32_t, unsigned, int64_t, uint64_t, long, intptr_t, uintptr_t, pointers `T*`";

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
        ty: ValType::INT,
        init: InitVal::Int(0),
    });
    locs.len() - 1
}

/// Derive what the runner needs from `test`'s source; an error says what does not fit.
pub fn prepare(test: &FileTest) -> Result<Prepared, String> {
    let file = parse::parse(test.source).map_err(|e| e.display(test.name))?;
    let p = prepare_parsed(file, test.slots)?;
    // The generated bodies add the instance offset to the slots the generator took for
    // addresses and store the registers it took for kept: both must be what the runner reads.
    for (t, init) in p.io_init.iter().enumerate() {
        let addr: Vec<bool> = init.iter().map(|v| matches!(v, InitVal::Addr(_))).collect();
        if test.addr.get(t).copied() != Some(addr.as_slice()) {
            return Err(format!(
                "thread {t}: the generated code's address operands {:?} are not the init \
                 block's {addr:?}",
                test.addr.get(t)
            ));
        }
        let kept = p.kept(t);
        if test.kept.get(t).copied() != Some(kept.as_slice()) {
            return Err(format!(
                "thread {t}: the generated code keeps registers {:?}, the outcome reads {kept:?}",
                test.kept.get(t)
            ));
        }
    }
    Ok(p)
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
            let vt = ValType::of(ty.as_deref()).ok_or_else(|| {
                format!(
                    "location {name}: C type `{}` not supported (accepted: {TYPES})",
                    ty.as_deref().unwrap_or("")
                )
            })?;
            let k = loc_index(&mut locs, name);
            locs[k].size = vt.size;
            locs[k].ty = vt;
            locs[k].init = match value {
                Value::Int(v) => InitVal::Int(*v),
                Value::Addr(a) => {
                    // Pointers are 8 bytes whatever was written.
                    locs[k].size = 8;
                    locs[k].ty = ValType::PTR;
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
    let shown = atoms.len();
    if let Some(f) = &file.filter {
        f.atoms(&mut atoms);
    }
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
    let mut col_types = Vec::new();
    for a in &atoms {
        match a {
            Atom::Loc(l) => {
                let loc = loc_index(&mut locs, l);
                cols.push(Col::Loc { loc });
                col_types.push(locs[loc].ty);
            }
            Atom::Reg { thread, reg } => {
                // A typed register (`uint16_t 1:X3;`) reads as its type, an untyped one as
                // `int` (herd7 and litmus7 alike), one the init block points at a location as a
                // pointer.
                let want = canonical_reg(arch, reg);
                let decl = file.init.iter().find(|i| {
                    matches!(&i.target, Atom::Reg { thread: t, reg: r }
                        if t == thread && canonical_reg(arch, r) == want)
                });
                let vt = match decl {
                    Some(Init {
                        value: Value::Addr(_),
                        ..
                    }) => ValType::PTR,
                    Some(Init { ty: Some(ty), .. }) => ValType::of(Some(ty)).ok_or_else(|| {
                        format!("register {thread}:{reg}: C type `{ty}` not supported (accepted: {TYPES})")
                    })?,
                    _ => ValType::INT,
                };
                col_types.push(vt);
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
    Ok(Prepared {
        file,
        locs,
        io_init,
        cols,
        col_types,
        shown,
    })
}

impl Prepared {
    /// The slots of thread `t` whose final values the outcome reads, ascending (the order the
    /// generated body stores them in).
    pub fn kept(&self, t: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .cols
            .iter()
            .filter_map(|c| match c {
                Col::Reg { thread, slot, .. } if *thread == t => Some(*slot),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Raw column values as the runner read them (locations zero-extended from their width,
    /// registers whole, addresses already [`ADDR`] + index) cast to each column's type.
    pub fn cast(&self, raw: &[i64]) -> [i64; MAX_COLS] {
        let mut out = [0i64; MAX_COLS];
        for (k, (v, t)) in raw.iter().zip(&self.col_types).enumerate() {
            out[k] = if self.is_addr(*v) { *v } else { t.cast(*v) };
        }
        out
    }

    fn is_addr(&self, v: i64) -> bool {
        v >= ADDR && v < ADDR + self.locs.len() as i64
    }

    /// An outcome (cast values) as herd7 and litmus7 spell it, e.g. `0:X0=1; [x]=2;`: the shown
    /// columns only, decimal.
    pub fn outcome(&self, vals: &[i64]) -> String {
        let mut s = String::new();
        for ((c, v), t) in self
            .cols
            .iter()
            .zip(vals)
            .zip(&self.col_types)
            .take(self.shown)
        {
            if !s.is_empty() {
                s.push(' ');
            }
            let val = if self.is_addr(*v) {
                self.locs[(*v - ADDR) as usize].name.clone()
            } else {
                t.show(*v)
            };
            match c {
                Col::Reg { thread, name, .. } => s.push_str(&format!("{thread}:{name}={val};")),
                Col::Loc { loc } => s.push_str(&format!("[{}]={val};", self.locs[*loc].name)),
            }
        }
        s
    }

    /// Evaluate `prop` on an outcome (cast values, every column including the filter's). A
    /// constant is read as its column's type, so `x=0xffff` and `x=-1` mean the same for an
    /// `int16_t x` (as litmus7's `cast_constant`, herdtools7 `litmus/skelUtil.ml`).
    fn eval(&self, prop: &super::parse::Prop, vals: &[i64]) -> bool {
        let col = |a: &Atom| -> Option<usize> {
            self.cols.iter().position(|c| match (c, a) {
                (Col::Loc { loc }, Atom::Loc(l)) => self.locs[*loc].name == *l,
                (Col::Reg { thread, name, .. }, Atom::Reg { thread: t, reg }) => {
                    thread == t && name == reg
                }
                _ => false,
            })
        };
        let addr = |l: &str| -> i64 {
            self.locs
                .iter()
                .position(|x| x.name == l)
                .map_or(i64::MAX - 1, |k| ADDR + k as i64)
        };
        // Every atom of the condition and the filter is a column (see `prepare_parsed`).
        let value = |a: &Atom| -> i64 { col(a).map_or(i64::MAX, |k| vals[k]) };
        let cast = |a: &Atom, v: i64| -> i64 {
            match col(a) {
                Some(k) if !self.is_addr(v) => self.col_types[k].cast(v),
                _ => v,
            }
        };
        prop.eval_cast(&value, &addr, &cast)
    }

    /// Whether an outcome (cast values) satisfies the condition's proposition.
    pub fn satisfies(&self, vals: &[i64]) -> bool {
        self.eval(&self.file.cond.prop, vals)
    }

    /// Whether an outcome passes the `filter` (always, without one).
    pub fn passes_filter(&self, vals: &[i64]) -> bool {
        self.file.filter.as_ref().is_none_or(|f| self.eval(f, vals))
    }

    /// The condition as litmus7 prints it.
    pub fn condition(&self) -> String {
        self.file.cond.to_string()
    }
}

/// What a run's histogram says, judged: the record's fields.
#[derive(Debug, PartialEq)]
pub struct Summary {
    /// (outcome text, count), sorted by outcome, filtered runs left out.
    pub histogram: Vec<(String, u64)>,
    /// Runs counted: those that passed the `filter`.
    pub counted: u64,
    /// Counted runs that satisfied the condition.
    pub observed: u64,
    pub verdict: crate::record::Verdict,
    pub reason: Option<String>,
    /// Where the verdict comes from (`rule` of the record).
    pub rule: String,
}

/// Judge the raw histogram of `iterations` runs of `t`:
/// - every outcome is cast to its columns' types ([`Prepared::cast`]);
/// - an outcome that fails the `filter` is not counted anywhere (histogram, condition,
///   iterations), as litmus7 (herdtools7 `litmus/skel.ml`, `if (filter_cond(..)) { .. }` around
///   `add_outcome` and the `n_pos`/`n_neg` counts) and herd7 (which drops such executions) do;
/// - with herd7's allowed states ([`FileTest::states`]), an outcome matching none of them is a
///   `violation` whatever the condition; otherwise the kinds verdict ([`judge`]).
pub fn summarise(
    t: &FileTest,
    p: &Prepared,
    raw: &alloc::collections::BTreeMap<[i64; MAX_COLS], u64>,
    iterations: u64,
) -> Summary {
    use alloc::collections::BTreeMap;
    let n = p.cols.len();
    let mut shown: BTreeMap<String, u64> = BTreeMap::new();
    let (mut counted, mut observed, mut filtered) = (0u64, 0u64, 0u64);
    let mut outside: Option<(String, u64)> = None;
    let mut outside_n = 0usize;
    for (k, c) in raw {
        let v = p.cast(&k[..n]);
        if !p.passes_filter(&v[..n]) {
            filtered += c;
            continue;
        }
        counted += c;
        if p.satisfies(&v[..n]) {
            observed += c;
        }
        let text = p.outcome(&v[..n]);
        if let Some(st) = t.states {
            let allowed = st.states.iter().any(|row| {
                row.iter()
                    .zip(&v[..p.shown])
                    .all(|(want, got)| want.is_none_or(|w| w == *got))
            });
            if !allowed && !shown.contains_key(&text) {
                outside_n += 1;
                if outside.is_none() {
                    outside = Some((text.clone(), *c));
                }
            }
        }
        *shown.entry(text).or_insert(0) += c;
    }
    let _ = iterations;
    let mut rule = String::from(t.rule);
    let (verdict, mut reason) = match (t.states, outside) {
        (Some(st), Some((o, c))) => (
            crate::record::Verdict::Violation,
            Some(format!(
                "outcome `{o}` (seen {c} times{}) is none of the {} final states herd7 allows in {}",
                if outside_n > 1 {
                    format!("; {} outcomes outside in all", outside_n)
                } else {
                    String::new()
                },
                st.states.len(),
                st.source
            )),
        ),
        (Some(st), None) => {
            // Every outcome is one herd7 allows: the condition cannot have been violated
            // either (its verdict follows from the same states).
            let (v, why) = judge(p.file.cond.quant, t.model, observed, counted);
            match v {
                crate::record::Verdict::Unjudged => (
                    crate::record::Verdict::Ok,
                    Some(format!(
                        "every outcome is one of the {} final states herd7 allows in {}",
                        st.states.len(),
                        st.source
                    )),
                ),
                v => (v, why),
            }
        }
        (None, _) => judge(p.file.cond.quant, t.model, observed, counted),
    };
    if let Some(st) = t.states {
        if !rule.contains(st.source) {
            rule = format!("{rule}; final states: {}", st.source);
        }
    }
    if filtered > 0 {
        let note = format!(
            "{filtered} of {} runs failed the filter ({}) and are not counted, as litmus7",
            counted + filtered,
            p.file
                .filter
                .as_ref()
                .map(|f| f.to_string())
                .unwrap_or_default()
        );
        reason = Some(match reason {
            Some(r) => format!("{r}; {note}"),
            None => note,
        });
    }
    Summary {
        histogram: shown.into_iter().collect(),
        counted,
        observed,
        verdict,
        reason,
        rule,
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

    #[test]
    fn value_types_cast_and_print_as_herd7() {
        let u16t = ValType::of(Some("uint16_t")).unwrap();
        let i8t = ValType::of(Some("int8_t")).unwrap();
        let u64t = ValType::of(Some("uint64_t")).unwrap();
        assert_eq!(ValType::of(None), Some(ValType::INT));
        assert_eq!(ValType::of(Some("int *")), Some(ValType::PTR));
        assert_eq!(ValType::of(Some("float")), None);
        assert_eq!(u16t.cast(0x1_0402), 0x402);
        assert_eq!(i8t.cast(0xff), -1);
        assert_eq!(ValType::INT.cast(0xffff_ffff), -1);
        assert_eq!(ValType::INT.cast(0x1_0000_0001), 1);
        assert_eq!(u64t.cast(-1), -1);
        assert_eq!(u64t.show(-1), "18446744073709551615");
        assert_eq!(ValType::INT.show(-1), "-1");
    }

    const MIXED: &str = "AArch64 M\n{ uint16_t x=0; uint16_t 0:X2; int8_t y=-1; 0:X5=x; \
        0:X1=0x1; }\n P0 ;\n STRB W1,[X5,#1] ;\n LDRH W2,[X5] ;\n\
        exists (x=0x0100 /\\ 0:X2=256 /\\ y=0xff)\n";

    #[test]
    fn mixed_sizes_read_at_the_type_width() {
        let f = parse::parse(MIXED).unwrap();
        let p = prepare_parsed(f, &[&["X1", "X5", "X2"]]).unwrap();
        assert_eq!(p.locs[0].size, 2);
        assert_eq!(p.locs[1].ty, ValType::of(Some("int8_t")).unwrap());
        assert_eq!(p.col_types, [p.locs[0].ty, p.locs[0].ty, p.locs[1].ty]);
        // Raw values: x's two bytes, X2 with stale upper bits, y's byte zero-extended.
        let v = p.cast(&[0x0100, 0xdead_0000_0100, 0xff]);
        assert_eq!(&v[..3], &[256, 256, -1]);
        assert_eq!(p.outcome(&v[..3]), "[x]=256; 0:X2=256; [y]=-1;");
        // `y=0xff` names the same int8_t value as -1.
        assert!(p.satisfies(&v[..3]));
        assert!(!p.satisfies(&p.cast(&[0x0100, 0x0100, 0x7f])[..3]));
    }

    fn file_test(
        src: &'static str,
        model: ModelVerdict,
        states: Option<&'static FileStates>,
    ) -> FileTest {
        FileTest {
            name: "T",
            source: src,
            arch: crate::attr::Arch::Aarch64,
            bodies: &[],
            slots: &[],
            addr: &[],
            kept: &[],
            wide: false,
            needs: &[],
            model,
            rule: "test kinds",
            states,
        }
    }

    const FILTERED: &str = "AArch64 F\n{ 0:X1=x; 1:X1=x; }\n P0 | P1 ;\n \
        MOV W0,#1 | LDR W0,[X1] ;\n STR W0,[X1] | LDR W2,[X1] ;\n\
        filter (1:X0=1)\nexists (1:X2=0)\n";

    #[test]
    fn filter_drops_runs_and_hides_its_columns() {
        let f = parse::parse(FILTERED).unwrap();
        let p = prepare_parsed(f, &[&["X0", "X1"], &["X0", "X1", "X2"]]).unwrap();
        // Shown: the condition's 1:X2; observed only: the filter's 1:X0.
        assert_eq!(p.shown, 1);
        assert_eq!(p.cols.len(), 2);
        let mut raw = alloc::collections::BTreeMap::new();
        let key = |x2: i64, x0: i64| {
            let mut k = [0i64; MAX_COLS];
            k[0] = x2;
            k[1] = x0;
            k
        };
        raw.insert(key(1, 1), 5u64);
        raw.insert(key(0, 0), 7);
        raw.insert(key(1, 0), 3);
        let t = file_test(FILTERED, ModelVerdict::Forbidden, None);
        let s = summarise(&t, &p, &raw, 15);
        // Only the 5 runs with 1:X0=1 count; the filter's column is not printed.
        assert_eq!(s.histogram, [("1:X2=1;".to_string(), 5)]);
        assert_eq!((s.counted, s.observed), (5, 0));
        assert_eq!(s.verdict, Verdict::Ok);
        assert!(s
            .reason
            .unwrap()
            .contains("10 of 15 runs failed the filter (1:X0=1)"));
        raw.insert(key(0, 1), 2);
        let s = summarise(&t, &p, &raw, 17);
        assert_eq!(
            (s.counted, s.observed, s.verdict),
            (7, 2, Verdict::Violation)
        );
    }

    static STATES: FileStates = FileStates {
        source: "herd7 states file s.txt (--states)",
        // Columns of SRC: [z], 1:X0, 1:X2, [x]; the states leave [z] out.
        states: &[
            &[None, Some(0), Some(ADDR + 1), Some(1)],
            &[None, Some(1), Some(ADDR + 1), Some(1)],
        ],
    };

    #[test]
    fn states_judge_every_outcome() {
        let p = prepared();
        let t = file_test(SRC, ModelVerdict::Allowed, Some(&STATES));
        let mut raw = alloc::collections::BTreeMap::new();
        let key = |v: [i64; 4]| {
            let mut k = [0i64; MAX_COLS];
            k[..4].copy_from_slice(&v);
            k
        };
        raw.insert(key([3, 1, ADDR + 1, 1]), 4u64);
        raw.insert(key([3, 0, ADDR + 1, 1]), 6);
        let s = summarise(&t, &p, &raw, 10);
        assert_eq!(s.verdict, Verdict::Ok);
        assert!(
            s.rule.contains("final states: herd7 states file s.txt"),
            "{}",
            s.rule
        );
        // An outcome that is no state (x still 0): a violation, though the condition (which
        // needs x != 0) did not hold for it.
        raw.insert(key([3, 0, ADDR + 1, 0]), 1);
        let s = summarise(&t, &p, &raw, 11);
        assert_eq!(s.verdict, Verdict::Violation);
        let why = s.reason.unwrap();
        assert!(
            why.contains("outcome `[z]=3; 1:X0=0; 1:X2=x; [x]=0;` (seen 1 times) is none of the 2 final states herd7 allows in herd7 states file s.txt"),
            "{why}"
        );
        assert_eq!(s.observed, 4);
    }
}
