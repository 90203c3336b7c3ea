//! Parser for herdtools7 `.litmus` files of the AArch64 and X86_64 architectures.
//!
//! The format (herdtools7 `litmus/` and `herd/` read it; the catalogue under
//! `catalogue/*/tests` is the reference spelling):
//!
//! ```text
//! AArch64 MP                       <- header: architecture, test name
//! "PodWW Rfe PodRR Fre"            <- optional doc string
//! Hash=…                           <- optional `Key=value` lines (Hash, Cycle, Generator…)
//! { uint8_t x=1; 0:X1=x; 1:X2=3; } <- init: locations (typed or not), registers
//!  P0          | P1          ;     <- thread columns, one row per instruction, `;` ends a row
//!  STR W0,[X1] | LDR W0,[X1] ;
//!  L0:         | B.EQ L0     ;     <- labels are cells of their own
//! locations [x; 1:X0;]             <- optional: extra columns of the outcome
//! exists (0:X0=1 /\ ~[y]=0)        <- final condition: exists | ~exists | forall, with
//!                                     /\ \/ ~ ( ) and atoms [x], x, P:R
//! ```
//!
//! `(* … *)` comments may appear anywhere. Every error names the line and column (1-based) and
//! says what was expected; [`ParseError::display`] prefixes the file name.
//!
//! Written from the format's description and the catalogue files, not from herdtools7's code.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

#[cfg(test)]
mod tests;

/// The architectures this parser accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileArch {
    AArch64,
    X86_64,
}

impl FileArch {
    /// The header word, as herdtools7 spells it.
    pub fn word(self) -> &'static str {
        match self {
            FileArch::AArch64 => "AArch64",
            FileArch::X86_64 => "X86_64",
        }
    }
}

/// A parsed `.litmus` file.
#[derive(Clone, Debug, PartialEq)]
pub struct LitmusFile {
    pub arch: FileArch,
    pub name: String,
    /// The quoted doc string, without quotes.
    pub doc: Option<String>,
    /// `Key=value` lines between the header and the init block, in order (`Hash` among them).
    pub info: Vec<(String, String)>,
    pub init: Vec<Init>,
    pub threads: Vec<Thread>,
    /// The `locations [...]` list.
    pub locations: Vec<Atom>,
    /// The `filter` clause, if any.
    pub filter: Option<Prop>,
    pub cond: Final,
}

impl LitmusFile {
    /// The `Hash=` line's value, if the file has one.
    pub fn hash(&self) -> Option<&str> {
        self.info
            .iter()
            .find(|(k, _)| k == "Hash")
            .map(|(_, v)| v.as_str())
    }
}

/// Where a line, cell or item starts (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// One item of the init block.
#[derive(Clone, Debug, PartialEq)]
pub struct Init {
    pub target: Atom,
    /// The C type written before it (`uint8_t`, `int`, `int64_t`…), if any.
    pub ty: Option<String>,
    pub value: Value,
    pub pos: Pos,
}

/// A value in the init block or the condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    /// The address of a location (`0:X1=x`, `&x`).
    Addr(String),
}

/// A location or a thread's register.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Atom {
    Loc(String),
    Reg { thread: usize, reg: String },
}

impl core::fmt::Display for Atom {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Atom::Loc(l) => write!(f, "[{l}]"),
            Atom::Reg { thread, reg } => write!(f, "{thread}:{reg}"),
        }
    }
}

impl core::fmt::Display for Value {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Addr(a) => write!(f, "{a}"),
        }
    }
}

/// One thread column.
#[derive(Clone, Debug, PartialEq)]
pub struct Thread {
    /// `n` of its `Pn` header.
    pub id: usize,
    /// Its non-empty cells, top to bottom: instructions and labels (`L0:`), trimmed.
    pub code: Vec<(String, Pos)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quant {
    Exists,
    NotExists,
    Forall,
}

impl Quant {
    pub fn word(self) -> &'static str {
        match self {
            Quant::Exists => "exists",
            Quant::NotExists => "~exists",
            Quant::Forall => "forall",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Final {
    pub quant: Quant,
    pub prop: Prop,
}

impl core::fmt::Display for Final {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.quant.word(), self.prop)
    }
}

/// A proposition over final values.
#[derive(Clone, Debug, PartialEq)]
pub enum Prop {
    True,
    False,
    Eq(Atom, Value),
    Not(Box<Prop>),
    And(Vec<Prop>),
    Or(Vec<Prop>),
}

impl Prop {
    /// Every atom the proposition reads, in order of appearance, without repeats.
    pub fn atoms(&self, out: &mut Vec<Atom>) {
        match self {
            Prop::True | Prop::False => {}
            Prop::Eq(a, _) => {
                if !out.contains(a) {
                    out.push(a.clone());
                }
            }
            Prop::Not(p) => p.atoms(out),
            Prop::And(ps) | Prop::Or(ps) => ps.iter().for_each(|p| p.atoms(out)),
        }
    }

    /// Evaluate with `value(atom)` giving each atom's final value (addresses already resolved
    /// to integers by `addr`).
    pub fn eval(&self, value: &dyn Fn(&Atom) -> i64, addr: &dyn Fn(&str) -> i64) -> bool {
        self.eval_cast(value, addr, &|_, v| v)
    }

    /// [`Prop::eval`] with each constant first read as its atom's type by `cast(atom, value)`
    /// (so `x=0xffff` and `x=-1` agree for an `int16_t x`).
    pub fn eval_cast(
        &self,
        value: &dyn Fn(&Atom) -> i64,
        addr: &dyn Fn(&str) -> i64,
        cast: &dyn Fn(&Atom, i64) -> i64,
    ) -> bool {
        match self {
            Prop::True => true,
            Prop::False => false,
            Prop::Eq(a, v) => {
                let want = match v {
                    Value::Int(i) => cast(a, *i),
                    Value::Addr(l) => addr(l),
                };
                value(a) == want
            }
            Prop::Not(p) => !p.eval_cast(value, addr, cast),
            Prop::And(ps) => ps.iter().all(|p| p.eval_cast(value, addr, cast)),
            Prop::Or(ps) => ps.iter().any(|p| p.eval_cast(value, addr, cast)),
        }
    }
}

impl core::fmt::Display for Prop {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        fn join(f: &mut core::fmt::Formatter<'_>, ps: &[Prop], op: &str) -> core::fmt::Result {
            for (i, p) in ps.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                match p {
                    Prop::And(_) | Prop::Or(_) => write!(f, "({p})")?,
                    _ => write!(f, "{p}")?,
                }
            }
            Ok(())
        }
        match self {
            Prop::True => write!(f, "true"),
            Prop::False => write!(f, "false"),
            Prop::Eq(a, v) => write!(f, "{a}={v}"),
            Prop::Not(p) => match **p {
                Prop::Eq(..) | Prop::True | Prop::False => write!(f, "~{p}"),
                _ => write!(f, "~({p})"),
            },
            Prop::And(ps) => join(f, ps, "/\\"),
            Prop::Or(ps) => join(f, ps, "\\/"),
        }
    }
}

/// What was wrong, where, and what the parser expected there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub pos: Pos,
    /// What the parser accepts at that point.
    pub expected: String,
    /// What it found instead.
    pub found: String,
}

impl ParseError {
    /// `file:line:col: expected …, found …`.
    pub fn display(&self, file: &str) -> String {
        format!(
            "{file}:{}:{}: expected {}, found {}",
            self.pos.line, self.pos.col, self.expected, self.found
        )
    }
}

fn err<T>(
    pos: Pos,
    expected: impl Into<String>,
    found: impl Into<String>,
) -> Result<T, ParseError> {
    Err(ParseError {
        pos,
        expected: expected.into(),
        found: found.into(),
    })
}

/// The text with `(* … *)` comments blanked (newlines kept, so positions stay true).
fn strip_comments(src: &str) -> Result<Vec<u8>, ParseError> {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let (mut line, mut col) = (1, 1);
    while i < b.len() {
        if b[i] == b'(' && b.get(i + 1) == Some(&b'*') {
            let start = Pos { line, col };
            let mut depth = 0usize;
            loop {
                if i >= b.len() {
                    return err(start, "`*)` closing this comment", "the end of the file");
                }
                if b[i] == b'(' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out[i] = b' ';
                    out[i + 1] = b' ';
                    i += 2;
                    col += 2;
                    continue;
                }
                if b[i] == b'*' && b.get(i + 1) == Some(&b')') {
                    depth -= 1;
                    out[i] = b' ';
                    out[i + 1] = b' ';
                    i += 2;
                    col += 2;
                    if depth == 0 {
                        break;
                    }
                    continue;
                }
                if b[i] == b'\n' {
                    line += 1;
                    col = 1;
                } else {
                    out[i] = b' ';
                    col += 1;
                }
                i += 1;
            }
            continue;
        }
        if b[i] == b'\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
        i += 1;
    }
    Ok(out)
}

/// A cursor over the comment-free text.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
    line: usize,
    col: usize,
}

impl<'a> Cur<'a> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn rest(&self) -> &'a [u8] {
        &self.b[self.i..]
    }
    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }
    /// Skip spaces, tabs and carriage returns (not newlines).
    fn skip_blank(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r')) {
            self.bump();
        }
    }
    /// Skip all white space, newlines included.
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(c) if c.is_ascii_whitespace()) {
            self.bump();
        }
    }
    /// The rest of the current line (newline consumed, not returned).
    fn line_text(&mut self) -> (String, Pos) {
        let p = self.pos();
        let start = self.i;
        while !matches!(self.peek(), None | Some(b'\n')) {
            self.bump();
        }
        let s = String::from_utf8_lossy(&self.b[start..self.i]).into_owned();
        self.bump();
        (s, p)
    }
    fn at_eof(&self) -> bool {
        self.i >= self.b.len()
    }
    /// What is at the cursor, for error messages.
    fn found(&self) -> String {
        describe(self.rest())
    }
}

/// A short description of `rest` for "found …".
fn describe(rest: &[u8]) -> String {
    if rest.is_empty() {
        return "the end of the file".into();
    }
    let end = rest
        .iter()
        .position(|&c| c == b'\n')
        .unwrap_or(rest.len())
        .min(24);
    let s = String::from_utf8_lossy(&rest[..end]);
    let s = s.trim_end();
    if s.is_empty() {
        "the end of the line".into()
    } else {
        format!("`{s}`")
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}
fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
}

/// Parse a whole `.litmus` file.
pub fn parse(src: &str) -> Result<LitmusFile, ParseError> {
    let text = strip_comments(src)?;
    let mut c = Cur {
        b: &text,
        i: 0,
        line: 1,
        col: 1,
    };

    // Header: `ARCH NAME`.
    c.skip_ws();
    let (hdr, hpos) = c.line_text();
    let mut words = hdr.split_whitespace();
    let arch = match words.next() {
        Some("AArch64") => FileArch::AArch64,
        Some("X86_64") => FileArch::X86_64,
        Some(w) => {
            return err(
                hpos,
                "the architecture `AArch64` or `X86_64` at the start of the header line",
                format!("`{w}`"),
            )
        }
        None => return err(hpos, "a header line `ARCH NAME`", "the end of the file"),
    };
    let name = match words.next() {
        Some(n) => n.to_string(),
        None => {
            return err(
                Pos {
                    line: hpos.line,
                    col: hpos.col + hdr.trim_end().len(),
                },
                "the test name after the architecture",
                "the end of the line",
            )
        }
    };
    if let Some(extra) = words.next() {
        let col = hpos.col + hdr.find(extra).unwrap_or(0);
        return err(
            Pos {
                line: hpos.line,
                col,
            },
            "the end of the header line after the test name",
            format!("`{extra}`"),
        );
    }

    // Doc string and `Key=value` lines, up to `{`.
    let mut doc = None;
    let mut info = Vec::new();
    loop {
        c.skip_ws();
        match c.peek() {
            None => return err(c.pos(), "the init block `{ … }`", "the end of the file"),
            Some(b'{') => break,
            Some(b'"') => {
                let p = c.pos();
                c.bump();
                let start = c.i;
                while !matches!(c.peek(), None | Some(b'"')) {
                    c.bump();
                }
                if c.at_eof() {
                    return err(p, "`\"` closing the doc string", "the end of the file");
                }
                let s = String::from_utf8_lossy(&c.b[start..c.i]).into_owned();
                c.bump();
                doc = Some(s);
            }
            Some(_) => {
                let (l, p) = c.line_text();
                match l.split_once('=') {
                    Some((k, v))
                        if !k.trim().is_empty()
                            && k.trim().bytes().all(|b| is_ident(b) || b == b'-') =>
                    {
                        info.push((k.trim().to_string(), v.trim().to_string()));
                    }
                    _ => {
                        return err(
                            p,
                            "a doc string `\"…\"`, a `Key=value` line or the init block `{`",
                            describe(l.as_bytes()),
                        )
                    }
                }
            }
        }
    }

    // Init block.
    c.bump(); // `{`
    let init = parse_init(&mut c)?;

    // Thread table, up to the line starting the final section.
    let threads = parse_table(&mut c)?;

    // locations, filter, condition.
    let mut locations = Vec::new();
    let mut filter = None;
    let cond;
    loop {
        c.skip_ws();
        let r = c.rest();
        if r.starts_with(b"locations") {
            for _ in 0.."locations".len() {
                c.bump();
            }
            locations = parse_locations(&mut c)?;
        } else if r.starts_with(b"filter") {
            for _ in 0.."filter".len() {
                c.bump();
            }
            filter = Some(parse_prop(&mut c)?);
        } else {
            let quant = if r.starts_with(b"exists") {
                Quant::Exists
            } else if r.starts_with(b"~") && {
                let mut j = 1;
                while matches!(r.get(j), Some(b' ' | b'\t')) {
                    j += 1;
                }
                r[j..].starts_with(b"exists")
            } {
                c.bump();
                c.skip_blank();
                Quant::NotExists
            } else if r.starts_with(b"forall") {
                Quant::Forall
            } else {
                return err(
                    c.pos(),
                    "`locations [...]`, `filter`, or the final condition (`exists`, `~exists`, \
                     `forall`)",
                    c.found(),
                );
            };
            // `exists` and `forall` are both six letters.
            let w = 6;
            for _ in 0..w {
                c.bump();
            }
            let prop = parse_prop(&mut c)?;
            cond = Final { quant, prop };
            // Some catalogue files end the condition with `;`.
            c.skip_ws();
            if c.peek() == Some(b';') {
                c.bump();
            }
            break;
        }
    }
    c.skip_ws();
    if !c.at_eof() {
        return err(
            c.pos(),
            "the end of the file after the final condition (or `/\\`, `\\/` continuing it)",
            c.found(),
        );
    }
    Ok(LitmusFile {
        arch,
        name,
        doc,
        info,
        init,
        threads,
        locations,
        filter,
        cond,
    })
}

/// `P:R` or a location name; `text` is trimmed.
fn atom_of(text: &str, pos: Pos) -> Result<Atom, ParseError> {
    if let Some((t, r)) = text.split_once(':') {
        let t = t.trim();
        let r = r.trim();
        match t.parse::<usize>() {
            Ok(thread) if !r.is_empty() && r.bytes().all(is_ident) => Ok(Atom::Reg {
                thread,
                reg: r.to_string(),
            }),
            _ => err(
                pos,
                "a register `P:R` (thread number, `:`, register name)",
                format!("`{text}`"),
            ),
        }
    } else if !text.is_empty() && is_ident_start(text.as_bytes()[0]) && text.bytes().all(is_ident) {
        Ok(Atom::Loc(text.to_string()))
    } else {
        err(
            pos,
            "a location name or a register `P:R`",
            if text.is_empty() {
                "nothing".to_string()
            } else {
                format!("`{text}`")
            },
        )
    }
}

/// An integer: decimal or `0x` hex, optionally negative. Values up to `u64::MAX` (a `uint64_t`
/// location's, e.g. `0xffffffffffffffff`) are accepted and kept as their 64-bit pattern; the
/// column's type says how it reads (`file::ValType`).
pub fn parse_int(s: &str) -> Option<i64> {
    let (neg, d) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let v = if let Some(h) = d.strip_prefix("0x").or_else(|| d.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) {
        d.parse::<u64>().ok()?
    } else {
        return None;
    };
    if neg {
        // -2^63 is the most negative value; `-0x8000000000000000` included.
        if v > 1u64 << 63 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        Some(v as i64)
    }
}

fn value_of(text: &str, pos: Pos) -> Result<Value, ParseError> {
    let t = text.trim();
    if let Some(v) = parse_int(t) {
        return Ok(Value::Int(v));
    }
    let name = t.strip_prefix('&').unwrap_or(t).trim();
    if !name.is_empty() && is_ident_start(name.as_bytes()[0]) && name.bytes().all(is_ident) {
        return Ok(Value::Addr(name.to_string()));
    }
    err(
        pos,
        "a value: an integer (decimal or 0x hex) or a location name (its address)",
        if t.is_empty() {
            "nothing".to_string()
        } else {
            format!("`{t}`")
        },
    )
}

/// Items up to `}`, separated by `;`.
fn parse_init(c: &mut Cur) -> Result<Vec<Init>, ParseError> {
    let mut items = Vec::new();
    loop {
        c.skip_ws();
        let pos = c.pos();
        let start = c.i;
        while !matches!(c.peek(), None | Some(b';' | b'}' | b'|')) {
            c.bump();
        }
        let raw = String::from_utf8_lossy(&c.b[start..c.i]).into_owned();
        let term = c.peek();
        if term.is_none() {
            return err(pos, "`}` closing the init block", "the end of the file");
        }
        if term == Some(b'|') {
            // A thread column separator: the block was never closed.
            return err(
                pos,
                "`}` closing the init block before the thread columns",
                describe(&c.b[start..]),
            );
        }
        c.bump();
        let item = raw.trim();
        if !item.is_empty() {
            items.push(init_item(item, pos)?);
        }
        if term == Some(b'}') {
            return Ok(items);
        }
    }
}

/// `[type] target [= value]`.
fn init_item(item: &str, pos: Pos) -> Result<Init, ParseError> {
    let (lhs, rhs) = match item.split_once('=') {
        Some((l, r)) => (l.trim(), Some(r)),
        None => (item, None),
    };
    // `0: X0` (spaces around the colon, as some catalogue files write it) is `0:X0`.
    let joined;
    let lhs = match lhs.split_once(':') {
        Some((a, b)) => {
            joined = format!("{}:{}", a.trim_end(), b.trim_start());
            joined.as_str()
        }
        None => lhs,
    };
    // The target is the last word; `0: X1` is not written with spaces in practice, but allow
    // `P:R` written with none only.
    let (ty, target) = match lhs.rfind(|ch: char| ch.is_whitespace() || ch == '*') {
        Some(k) => {
            let ty = lhs[..=k].trim();
            (
                if ty.is_empty() {
                    None
                } else {
                    Some(ty.to_string())
                },
                lhs[k + 1..].trim(),
            )
        }
        None => (None, lhs),
    };
    let target = atom_of(target, pos)?;
    let value = match rhs {
        Some(r) => value_of(r, pos)?,
        None if ty.is_some() => Value::Int(0),
        None => {
            return err(
                pos,
                "`= value` after the init item (or a type before it: `int x`)",
                format!("`{item}`"),
            )
        }
    };
    Ok(Init {
        target,
        ty,
        value,
        pos,
    })
}

/// Whether the line starting at `r` begins the final section.
fn starts_final(r: &[u8]) -> bool {
    let mut j = 0;
    while matches!(r.get(j), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        j += 1;
    }
    let r = &r[j..];
    r.starts_with(b"exists")
        || r.starts_with(b"~")
        || r.starts_with(b"forall")
        || r.starts_with(b"locations")
        || r.starts_with(b"filter")
}

fn parse_table(c: &mut Cur) -> Result<Vec<Thread>, ParseError> {
    // Rows end with `;`. Collect (cells with positions) per row.
    let mut rows: Vec<(Vec<(String, Pos)>, Pos)> = Vec::new();
    loop {
        c.skip_ws();
        if c.at_eof() || starts_final(c.rest()) {
            break;
        }
        let row_pos = c.pos();
        let mut cells = Vec::new();
        let mut cell_start = c.i;
        let mut cell_pos = c.pos();
        loop {
            match c.peek() {
                None => {
                    return err(
                        c.pos(),
                        "`;` ending the row of thread columns",
                        "the end of the file",
                    )
                }
                Some(b'\n') if starts_final(&c.rest()[1..]) => {
                    return err(
                        c.pos(),
                        "`;` ending the row of thread columns",
                        "the end of the line",
                    )
                }
                Some(b'|') | Some(b';') => {
                    let end = c.i;
                    let text = String::from_utf8_lossy(&c.b[cell_start..end]);
                    // Position of the first non-blank character of the cell.
                    let lead = text.len() - text.trim_start().len();
                    let mut p = cell_pos;
                    for ch in text[..lead].chars() {
                        if ch == '\n' {
                            p.line += 1;
                            p.col = 1;
                        } else {
                            p.col += 1;
                        }
                    }
                    cells.push((text.trim().to_string(), p));
                    let last = c.peek() == Some(b';');
                    c.bump();
                    if last {
                        break;
                    }
                    cell_start = c.i;
                    cell_pos = c.pos();
                }
                Some(_) => {
                    c.bump();
                }
            }
        }
        rows.push((cells, row_pos));
    }
    let Some((header, hpos)) = rows.first() else {
        return err(c.pos(), "the thread header row `P0 | P1 … ;`", c.found());
    };
    let _ = hpos;
    let mut threads = Vec::new();
    for (k, (cell, p)) in header.iter().enumerate() {
        let id = cell.strip_prefix('P').and_then(|n| n.parse::<usize>().ok());
        if id != Some(k) {
            return err(
                *p,
                format!("the thread name `P{k}` in column {}", k + 1),
                if cell.is_empty() {
                    "an empty cell".to_string()
                } else {
                    format!("`{cell}`")
                },
            );
        }
        threads.push(Thread {
            id: k,
            code: Vec::new(),
        });
    }
    for (cells, p) in &rows[1..] {
        if cells.len() != threads.len() {
            return err(
                *p,
                format!(
                    "{} cells (one per thread, separated by `|`) in this row",
                    threads.len()
                ),
                format!("{}", cells.len()),
            );
        }
        for (t, (text, cp)) in cells.iter().enumerate() {
            if !text.is_empty() {
                threads[t].code.push((text.clone(), *cp));
            }
        }
    }
    Ok(threads)
}

fn parse_locations(c: &mut Cur) -> Result<Vec<Atom>, ParseError> {
    c.skip_ws();
    if c.peek() != Some(b'[') {
        return err(c.pos(), "`[` after `locations`", c.found());
    }
    c.bump();
    let mut out = Vec::new();
    loop {
        c.skip_ws();
        let pos = c.pos();
        let start = c.i;
        while !matches!(c.peek(), None | Some(b';' | b']')) {
            c.bump();
        }
        let term = c.peek();
        let text = String::from_utf8_lossy(&c.b[start..c.i]).trim().to_string();
        if term.is_none() {
            return err(pos, "`]` closing the locations list", "the end of the file");
        }
        c.bump();
        if !text.is_empty() {
            let t = text
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or(&text);
            out.push(atom_of(t.trim(), pos)?);
        }
        if term == Some(b']') {
            return Ok(out);
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    And,
    Or,
    Not,
    LParen,
    RParen,
    LBrack,
    RBrack,
    Eq,
    Colon,
    Word(String),
}

fn next_tok(c: &mut Cur) -> Result<Option<(Tok, Pos)>, ParseError> {
    c.skip_ws();
    let p = c.pos();
    let r = c.rest();
    let Some(&ch) = r.first() else {
        return Ok(None);
    };
    let t = match ch {
        b'/' if r.get(1) == Some(&b'\\') => {
            c.bump();
            Tok::And
        }
        b'\\' if r.get(1) == Some(&b'/') => {
            c.bump();
            Tok::Or
        }
        b'~' => Tok::Not,
        b'(' => Tok::LParen,
        b')' => Tok::RParen,
        b'[' => Tok::LBrack,
        b']' => Tok::RBrack,
        b'=' => Tok::Eq,
        b':' => Tok::Colon,
        b'-' | b'&' | b'_' | b'.' => {
            return word_tok(c, p);
        }
        _ if ch.is_ascii_alphanumeric() => return word_tok(c, p),
        _ => {
            return err(
                p,
                "`/\\`, `\\/`, `~`, `(`, `)`, `[x]`, `P:R`, `=` or a value",
                c.found(),
            )
        }
    };
    c.bump();
    Ok(Some((t, p)))
}

fn word_tok(c: &mut Cur, p: Pos) -> Result<Option<(Tok, Pos)>, ParseError> {
    let start = c.i;
    c.bump();
    while matches!(c.peek(), Some(ch) if is_ident(ch)) {
        c.bump();
    }
    Ok(Some((
        Tok::Word(String::from_utf8_lossy(&c.b[start..c.i]).into_owned()),
        p,
    )))
}

/// Recursive-descent parser over the condition's tokens.
struct PropParser {
    toks: Vec<(Tok, Pos)>,
    k: usize,
    end: Pos,
}

impl PropParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.k).map(|(t, _)| t)
    }
    fn pos(&self) -> Pos {
        self.toks.get(self.k).map(|(_, p)| *p).unwrap_or(self.end)
    }
    fn found(&self) -> String {
        match self.toks.get(self.k) {
            None => "the end of the file".into(),
            Some((t, _)) => match t {
                Tok::And => "`/\\`".into(),
                Tok::Or => "`\\/`".into(),
                Tok::Not => "`~`".into(),
                Tok::LParen => "`(`".into(),
                Tok::RParen => "`)`".into(),
                Tok::LBrack => "`[`".into(),
                Tok::RBrack => "`]`".into(),
                Tok::Eq => "`=`".into(),
                Tok::Colon => "`:`".into(),
                Tok::Word(w) => format!("`{w}`"),
            },
        }
    }
    fn expect(&mut self, t: Tok, what: &str) -> Result<(), ParseError> {
        if self.peek() == Some(&t) {
            self.k += 1;
            Ok(())
        } else {
            err(self.pos(), what, self.found())
        }
    }
    fn disj(&mut self) -> Result<Prop, ParseError> {
        let mut v = vec_of(self.conj()?);
        while self.peek() == Some(&Tok::Or) {
            self.k += 1;
            v.push(self.conj()?);
        }
        Ok(if v.len() == 1 {
            v.pop().unwrap_or(Prop::True)
        } else {
            Prop::Or(v)
        })
    }
    fn conj(&mut self) -> Result<Prop, ParseError> {
        let mut v = vec_of(self.unary()?);
        while self.peek() == Some(&Tok::And) {
            self.k += 1;
            v.push(self.unary()?);
        }
        Ok(if v.len() == 1 {
            v.pop().unwrap_or(Prop::True)
        } else {
            Prop::And(v)
        })
    }
    fn unary(&mut self) -> Result<Prop, ParseError> {
        match self.peek() {
            Some(Tok::Not) => {
                self.k += 1;
                Ok(Prop::Not(Box::new(self.unary()?)))
            }
            Some(Tok::LParen) => {
                self.k += 1;
                let p = self.disj()?;
                self.expect(Tok::RParen, "`)` closing the parenthesis, `/\\` or `\\/`")?;
                Ok(p)
            }
            Some(Tok::Word(w)) if w == "true" => {
                self.k += 1;
                Ok(Prop::True)
            }
            Some(Tok::Word(w)) if w == "false" => {
                self.k += 1;
                Ok(Prop::False)
            }
            _ => {
                let a = self.atom()?;
                self.expect(Tok::Eq, "`=` after the location or register")?;
                let pos = self.pos();
                match self.peek().cloned() {
                    Some(Tok::Word(w)) => {
                        self.k += 1;
                        Ok(Prop::Eq(a, value_of(&w, pos)?))
                    }
                    _ => err(
                        pos,
                        "a value (integer or location name) after `=`",
                        self.found(),
                    ),
                }
            }
        }
    }
    fn atom(&mut self) -> Result<Atom, ParseError> {
        let pos = self.pos();
        match self.peek().cloned() {
            Some(Tok::LBrack) => {
                self.k += 1;
                let p = self.pos();
                let Some(Tok::Word(w)) = self.peek().cloned() else {
                    return err(p, "a location name inside `[ ]`", self.found());
                };
                self.k += 1;
                let a = atom_of(&w, p)?;
                self.expect(Tok::RBrack, "`]` after the location name")?;
                Ok(a)
            }
            Some(Tok::Word(w)) => {
                self.k += 1;
                if self.peek() == Some(&Tok::Colon) {
                    self.k += 1;
                    let p = self.pos();
                    let Some(Tok::Word(r)) = self.peek().cloned() else {
                        return err(p, "a register name after `P:`", self.found());
                    };
                    self.k += 1;
                    atom_of(&format!("{w}:{r}"), pos)
                } else {
                    atom_of(&w, pos)
                }
            }
            _ => err(
                pos,
                "a condition term: `[x]=v`, `x=v`, `P:R=v`, `~`, `(` or `true`/`false`",
                self.found(),
            ),
        }
    }
}

fn vec_of(p: Prop) -> Vec<Prop> {
    alloc::vec![p]
}

/// The proposition up to the end of the file (or the next `exists`/`forall`/`~exists` for a
/// `filter`).
fn parse_prop(c: &mut Cur) -> Result<Prop, ParseError> {
    let mut toks = Vec::new();
    loop {
        c.skip_ws();
        let r = c.rest();
        if r.starts_with(b"exists") || r.starts_with(b"forall") {
            break;
        }
        if r.starts_with(b"~") {
            let mut j = 1;
            while matches!(r.get(j), Some(b' ' | b'\t')) {
                j += 1;
            }
            if r[j..].starts_with(b"exists") {
                break;
            }
        }
        if c.peek() == Some(b';') {
            break;
        }
        match next_tok(c)? {
            Some(t) => toks.push(t),
            None => break,
        }
    }
    let mut p = PropParser {
        toks,
        k: 0,
        end: c.pos(),
    };
    let prop = p.disj()?;
    if p.k < p.toks.len() {
        return err(
            p.pos(),
            "`/\\`, `\\/` or the end of the condition",
            p.found(),
        );
    }
    Ok(prop)
}
