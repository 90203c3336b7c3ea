//! litmus7's `Hash=` of an AArch64 or X86_64 `.litmus` test, computed as herdtools7 computes it,
//! so `mcompare7` and `msum7` line up atomprobe's exported logs with litmus7's test by test.
//!
//! The facts below are read from herdtools7's source (commit 5feffe4e8; no code copied):
//!
//! - `lib/genParser.ml`: with the default hash mode (`HashInfo.Std`) a test that carries its own
//!   `Hash=` line keeps it; otherwise the hash is `TestHash.digest info init prog all_locs`, where
//!   `prog` is the code after parsing and macro expansion and `all_locs` are the locations of the
//!   `locations [...]` clause and of the final condition (`GenParserUtils.get_visible_locs`; the
//!   `filter` clause is not among them).
//! - `lib/testHash.ml`: the hash is the hex MD5 of four raw 16-byte MD5s put end to end:
//!   1. the meta-data: the `Key=value` lines whose key is `MemoryType`, `MT` or `CacheType`
//!      (case-insensitive; `MiscParser.digested_keys`), sorted by key, each written
//!      `lowercase(key)=value`, concatenated in *reverse* sorted order; when there is none, this
//!      part is the empty string, not the MD5 of it;
//!   2. the initial state, sorted by location (`MiscParser.location_compare`: registers first, by
//!      thread number then register name as written, then memory locations by name), duplicates
//!      dropped, each item printed `loc=v`, `type loc=v`, `_Atomic type loc=v`, `*P:R=v`
//!      (`P:R=&x`) or `type loc[n]`, joined by `"; "`; values are printed as written (the
//!      state lexer keeps a number's text: `0x10` stays `0x10`), an untyped or typed location
//!      without a value gets `0`;
//!   3. the code: labels renamed `L00`, `L01`, … in the sorted order of their names (every
//!      label defined or branched to, all threads together), each instruction printed by the
//!      architecture's `dump_instruction_hash` (`lib/AArch64Base.ml`: the instruction printer in
//!      its `compat` mode with immediates as `#n`; `lib/X86_64Base.ml`: `dump_instruction`), a
//!      label as its own line `L00:`, empty cells dropped, then laid out by `Misc.string_of_prog`:
//!      one line per row, each thread's cell left-justified to the width of that thread's
//!      longest line with one space either side, cells joined by `|`, each line ended by `;\n`;
//!   4. the observed locations (a set, same order as the init), printed `P:R` or `x`, joined by
//!      `"; "`.
//!
//! Only what herdtools7 prints is reproduced, and only for the instructions handled below: an
//! instruction, operand or init/condition form outside them is refused with an error naming it,
//! never hashed approximately (a wrong hash would make mcompare7 stop at `Hash mismatch`).

use md5::{Digest, Md5};

/// The hash litmus7 writes for the test in `src`: the file's own `Hash=` line when it has one
/// (litmus7 keeps it, herdtools7 `lib/genParser.ml`), otherwise the computed one.
pub fn litmus7_hash(src: &str) -> Result<String, String> {
    let s = split(src)?;
    if let Some((_, h)) = s.info.iter().find(|(k, _)| k == "Hash") {
        return Ok(h.trim().to_string());
    }
    hash_of(&s)
}

/// The hash herdtools7 computes from the test's text, ignoring any `Hash=` line it carries
/// (what `litmus7 -rehash true` would write).
pub fn computed_hash(src: &str) -> Result<String, String> {
    hash_of(&split(src)?)
}

/// The test's name, as its header line gives it.
pub fn test_name(src: &str) -> Result<String, String> {
    Ok(split(src)?.name)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arch {
    AArch64,
    X86_64,
}

/// The sections of a test, as herdtools7's splitter (`lib/splitter.mll`) cuts them.
struct Split {
    arch: Arch,
    name: String,
    info: Vec<(String, String)>,
    init: String,
    code: String,
    constr: String,
}

/// `(* … *)` comments (nested) replaced by spaces, newlines kept.
fn strip_comments(src: &str) -> Result<String, String> {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'(' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            out.extend_from_slice(b"  ");
            i += 2;
        } else if depth > 0 && b[i] == b'*' && b.get(i + 1) == Some(&b')') {
            depth -= 1;
            out.extend_from_slice(b"  ");
            i += 2;
        } else {
            out.push(if depth > 0 && b[i] != b'\n' {
                b' '
            } else {
                b[i]
            });
            i += 1;
        }
    }
    if depth > 0 {
        return Err("a `(*` comment is not closed".into());
    }
    String::from_utf8(out).map_err(|_| "the file is not UTF-8".into())
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_/.-".contains(c)
}

fn split(src: &str) -> Result<Split, String> {
    let text = strip_comments(src)?;
    let mut rest = text.trim_start();
    let header_end = rest.find('\n').unwrap_or(rest.len());
    let header = &rest[..header_end];
    let mut words = header.split_whitespace();
    let arch = match words.next() {
        Some("AArch64") => Arch::AArch64,
        Some("X86_64") => Arch::X86_64,
        Some(a) => {
            return Err(format!(
                "architecture `{a}`: the litmus7 hash is computed for AArch64 and X86_64 tests \
                 only"
            ))
        }
        None => return Err("no header line (architecture and test name)".into()),
    };
    let name = words
        .next()
        .ok_or("the header line has no test name")?
        .trim_end_matches(';');
    // A `.litmus` suffix is dropped from the name (herdtools7 `Misc.clean_name`).
    let name = name.strip_suffix(".litmus").unwrap_or(name).to_string();
    rest = &rest[header_end..];
    // Info lines (`Key=value`, the value up to the end of the line) before the `{` of the
    // init section; other lines (the doc string) are skipped (splitter.mll `find_init`).
    let open = rest.find('{').ok_or("no `{` starting the initial state")?;
    let mut info = Vec::new();
    for line in rest[..open].lines() {
        let l = line.trim_start();
        if !l.starts_with(is_name_start) {
            continue;
        }
        let key_len = l.find(|c: char| !is_name_char(c)).unwrap_or(l.len());
        let after = l[key_len..].trim_start_matches([' ', '\t']);
        if let Some(v) = after.strip_prefix('=') {
            let v = v.trim_start_matches([' ', '\t']).trim_end_matches('\r');
            info.push((l[..key_len].to_string(), v.to_string()));
        }
    }
    let after_open = &rest[open + 1..];
    let mut depth = 0usize;
    let mut close = None;
    for (i, c) in after_open.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                close = Some(i);
                break;
            }
            '}' => depth -= 1,
            _ => {}
        }
    }
    let close = close.ok_or("the initial state's `{` is not closed")?;
    let init = after_open[..close].to_string();
    let body = &after_open[close + 1..];
    // The code ends at the first constraint keyword outside a string (splitter.mll
    // `inside_prog`).
    let cut = constraint_start(body);
    Ok(Split {
        arch,
        name,
        info,
        init,
        code: body[..cut].to_string(),
        constr: body[cut..].to_string(),
    })
}

/// Where the constraints start in the text after the init section.
fn constraint_start(body: &str) -> usize {
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c == '"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += 1;
            }
            i += 1;
            continue;
        }
        if c == '~' {
            let t = body[i + 1..].trim_start_matches([' ', '\t', '\r']);
            if t.starts_with("exists") {
                return i;
            }
        }
        if is_name_start(c) {
            let len = body[i..]
                .find(|c: char| !is_name_char(c))
                .unwrap_or(body.len() - i);
            let w = &body[i..i + len];
            if [
                "final",
                "forall",
                "exists",
                "cases",
                "observed",
                "Observed",
                "locations",
                "filter",
            ]
            .iter()
            .any(|k| w.starts_with(k))
            {
                return i;
            }
            i += len;
            continue;
        }
        i += 1;
    }
    body.len()
}

fn md5(s: &[u8]) -> [u8; 16] {
    Md5::digest(s).into()
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_of(s: &Split) -> Result<String, String> {
    let mut all = Vec::new();
    all.extend(info_digest(&s.info));
    all.extend(md5(init_text(&s.init)?.as_bytes()));
    all.extend(md5(code_text(s.arch, &s.code)?.as_bytes()));
    all.extend(md5(observed_text(&s.constr)?.as_bytes()));
    Ok(hex(&md5(&all)))
}

/// Part 1: the digested meta-data keys (herdtools7 `lib/miscParser.ml` `digested_keys`).
fn info_digest(info: &[(String, String)]) -> Vec<u8> {
    let mut keys: Vec<&(String, String)> = info
        .iter()
        .filter(|(k, _)| {
            ["MemoryType", "MT", "CacheType"]
                .iter()
                .any(|d| d.eq_ignore_ascii_case(k))
        })
        .collect();
    if keys.is_empty() {
        return Vec::new();
    }
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    let s: String = keys
        .iter()
        .rev()
        .map(|(k, v)| format!("{}={v}", k.to_ascii_lowercase()))
        .collect();
    md5(s.as_bytes()).to_vec()
}

/// A location of the initial state or of the condition, ordered as
/// `MiscParser.location_compare` orders them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Loc {
    Reg(i64, String),
    Global(String),
}

impl Loc {
    fn dump(&self) -> String {
        match self {
            Loc::Reg(p, r) => format!("{p}:{r}"),
            Loc::Global(x) => x.clone(),
        }
    }
}

/// Tokens of the state lexer (`lib/stateLexer.mll`), as far as the hash needs them.
#[derive(Clone, Debug, PartialEq)]
enum STok {
    Num(String),
    Name(String),
    Proc(i64),
    Punct(&'static str),
}

fn state_tokens(s: &str) -> Result<Vec<STok>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let rest = &s[i..];
        // Numbers: `-`? decimal, or 0x hexadecimal.
        let hex_len = if rest.starts_with("0x") || rest.starts_with("0X") {
            2 + rest[2..]
                .find(|c: char| !c.is_ascii_hexdigit())
                .unwrap_or(rest.len() - 2)
        } else {
            0
        };
        if hex_len > 2 {
            out.push(STok::Num(rest[..hex_len].to_string()));
            i += hex_len;
            continue;
        }
        let neg = usize::from(c == '-');
        let dlen = rest[neg..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - neg);
        if dlen > 0 {
            out.push(STok::Num(rest[..neg + dlen].to_string()));
            i += neg + dlen;
            continue;
        }
        for p in ["/\\", "\\/", "==", "!=", "<>", "=>"] {
            if rest.starts_with(p) {
                out.push(STok::Punct(p));
                i += p.len();
                break;
            }
        }
        if matches!(out.last(), Some(STok::Punct(p)) if p.len() == 2 && rest.starts_with(*p)) {
            continue;
        }
        if let Some(p) = [
            ",", "&", ";", ":", "+", "[", "]", "(", ")", "{", "}", "=", "~", "*",
        ]
        .iter()
        .find(|p| rest.starts_with(**p))
        {
            out.push(STok::Punct(p));
            i += 1;
            continue;
        }
        if c == 'P' && rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
            let l = rest[1..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len() - 1);
            let after = &rest[1 + l..];
            if !after.starts_with(is_name_char) {
                out.push(STok::Proc(rest[1..1 + l].parse().map_err(|_| "thread")?));
                i += 1 + l;
                continue;
            }
        }
        if c.is_ascii_alphabetic() || c == '_' || c == '.' || c == '$' {
            let l = rest
                .find(|c: char| !(is_name_char(c) || c == '$'))
                .unwrap_or(rest.len());
            out.push(STok::Name(rest[..l].to_string()));
            i += l;
            continue;
        }
        return Err(format!("unexpected character `{c}` in `{}`", s.trim()));
    }
    Ok(out)
}

/// A location at the start of `t`: `P:R` (`0:X1`, `P0:X1`), `[x]` or `x`; and its length.
fn location(t: &[STok]) -> Option<(Loc, usize)> {
    match t {
        [STok::Num(p), STok::Punct(":"), STok::Name(r), ..] => {
            Some((Loc::Reg(p.parse().ok()?, r.clone()), 3))
        }
        [STok::Proc(p), STok::Punct(":"), STok::Name(r), ..] => Some((Loc::Reg(*p, r.clone()), 3)),
        [STok::Punct("["), STok::Name(x), STok::Punct("]"), ..] => {
            Some((Loc::Global(x.clone()), 3))
        }
        [STok::Name(x), ..] => Some((Loc::Global(x.clone()), 1)),
        _ => None,
    }
}

/// A value as herdtools7 prints it in the hash (`ParsedConstant.pp_v_old`), and its length.
fn value(t: &[STok]) -> Option<(String, usize)> {
    match t {
        [STok::Num(p), STok::Punct(":"), STok::Name(l), ..] => Some((format!("{p}:{l}"), 3)),
        [STok::Proc(p), STok::Punct(":"), STok::Name(l), ..] => Some((format!("{p}:{l}"), 3)),
        [STok::Num(n), ..] => Some((n.clone(), 1)),
        [STok::Name(x), ..] => Some((x.clone(), 1)),
        _ => None,
    }
}

/// Part 2: the initial state, printed as `TestHash.HashUtils.digest_init` prints it.
fn init_text(init: &str) -> Result<String, String> {
    let mut items: Vec<(Loc, String)> = Vec::new();
    for item in init.split(';') {
        if item.trim().is_empty() {
            continue;
        }
        let bad = || {
            format!(
                "initial state item `{}`: form not handled by the hash",
                item.trim()
            )
        };
        let t = state_tokens(item)?;
        let (atomic, t) = match t.first() {
            Some(STok::Name(n)) if n == "_Atomic" => (true, &t[1..]),
            _ => (false, &t[..]),
        };
        // A leading name followed by a location is a type.
        let (ty, t) = match t {
            [STok::Name(ty), rest @ ..] if location(rest).is_some() => (Some(ty.clone()), rest),
            _ => (None, t),
        };
        if atomic && ty.is_none() {
            return Err(bad());
        }
        let (loc, n) = location(t).ok_or_else(bad)?;
        let t = &t[n..];
        let printed = match (t, &ty) {
            ([], Some(ty)) => {
                format!(
                    "{}{ty} {}=0",
                    if atomic { "_Atomic " } else { "" },
                    loc.dump()
                )
            }
            ([], None) => format!("{}=0", loc.dump()),
            ([STok::Punct("["), STok::Num(n), STok::Punct("]")], Some(ty)) if !atomic => {
                format!("{ty} {}[{n}]", loc.dump())
            }
            ([STok::Punct("="), STok::Punct("&"), STok::Name(x)], None)
                if matches!(loc, Loc::Reg(..)) =>
            {
                format!("*{}={x}", loc.dump())
            }
            ([STok::Punct("="), v @ ..], _) => {
                let (v, n) = value(v).ok_or_else(bad)?;
                if n != t.len() - 1 {
                    return Err(bad());
                }
                match &ty {
                    Some(ty) => format!(
                        "{}{ty} {}={v}",
                        if atomic { "_Atomic " } else { "" },
                        loc.dump()
                    ),
                    None => format!("{}={v}", loc.dump()),
                }
            }
            _ => return Err(bad()),
        };
        items.push((loc, printed));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items.dedup_by(|a, b| a.0 == b.0);
    Ok(items
        .into_iter()
        .map(|(_, p)| p)
        .collect::<Vec<_>>()
        .join("; "))
}

/// Part 4: the locations of the `locations` clause and of the final condition.
fn observed_text(constr: &str) -> Result<String, String> {
    let t = state_tokens(constr)?;
    let mut locs: Vec<Loc> = Vec::new();
    let mut i = 0;
    let mut in_filter = false;
    while i < t.len() {
        match &t[i] {
            STok::Name(k) if k == "locations" => {
                if t.get(i + 1) != Some(&STok::Punct("[")) {
                    return Err("`locations` is not followed by `[`".into());
                }
                i += 2;
                while i < t.len() && t[i] != STok::Punct("]") {
                    if t[i] == STok::Punct(";") {
                        i += 1;
                        continue;
                    }
                    let (l, n) = location(&t[i..])
                        .ok_or_else(|| format!("`locations` item {:?} not handled", t[i]))?;
                    locs.push(l);
                    i += n;
                    if !matches!(t.get(i), Some(STok::Punct(";" | "]"))) {
                        return Err(format!(
                            "`locations` item {:?}: typed or dereferenced items are not handled \
                             by the hash",
                            t.get(i)
                        ));
                    }
                }
                i += 1;
            }
            STok::Name(k) if k == "filter" => {
                in_filter = true;
                i += 1;
            }
            STok::Name(k)
                if ["exists", "forall", "final", "observed", "Observed", "cases"]
                    .contains(&k.as_str()) =>
            {
                if k != "exists" && k != "forall" {
                    return Err(format!("final condition `{k}`: not handled by the hash"));
                }
                in_filter = false;
                i += 1;
            }
            STok::Name(k) if k == "fault" || k == "Fault" || k == "with" => {
                return Err(format!("`{k}` in the condition: not handled by the hash"));
            }
            STok::Punct("==" | "!=" | "<>") => {
                return Err("`==`/`!=` in the condition: not handled by the hash".into());
            }
            STok::Punct("=") => {
                // The location is what precedes the `=`.
                // The longest location ending right before the `=` (`0:X0` before `X0`).
                let start = [3usize, 1]
                    .iter()
                    .filter_map(|&n| i.checked_sub(n))
                    .find(|&j| location(&t[j..i]).is_some_and(|(_, n)| j + n == i))
                    .ok_or("a condition atom without a location")?;
                let (l, _) = location(&t[start..i]).expect("checked");
                if !in_filter {
                    locs.push(l);
                }
                i += 1;
                // Skip the value.
                if let Some((_, n)) = value(&t[i..]) {
                    i += n;
                }
            }
            _ => i += 1,
        }
    }
    locs.sort();
    locs.dedup();
    Ok(locs.iter().map(Loc::dump).collect::<Vec<_>>().join("; "))
}

/// One cell of a thread: labels defined there, then at most one instruction.
struct Cell {
    labels: Vec<String>,
    ins: Option<Ins>,
}

/// An instruction printed for the hash, with `{L}` standing for its branch target label.
struct Ins {
    text: String,
    target: Option<String>,
}

/// Part 3: the code, laid out as `Misc.string_of_prog` lays it out.
fn code_text(arch: Arch, code: &str) -> Result<String, String> {
    let rows: Vec<&str> = code.split(';').collect();
    let (last, rows) = rows.split_last().ok_or("no code")?;
    if !last.trim().is_empty() {
        return Err(format!("code text `{}` after the last `;`", last.trim()));
    }
    let (procs, rows) = rows.split_first().ok_or("no thread header row")?;
    let nprocs = procs.split('|').count();
    for (n, p) in procs.split('|').enumerate() {
        if p.trim() != format!("P{n}") {
            return Err(format!(
                "thread header `{}`: expected P{n} (fault handlers and thread attributes are \
                 not handled by the hash)",
                p.trim()
            ));
        }
    }
    let mut threads: Vec<Vec<Cell>> = (0..nprocs).map(|_| Vec::new()).collect();
    for row in rows {
        let cells: Vec<&str> = row.split('|').collect();
        if cells.len() != nprocs {
            return Err(format!(
                "code row `{}` has {} cells for {nprocs} threads",
                row.trim(),
                cells.len()
            ));
        }
        for (t, c) in cells.iter().enumerate() {
            let mut rest = c.trim();
            let mut labels = Vec::new();
            // `NAME:` prefixes are labels (the code grammar's `NAME COLON instr_option`).
            while let Some(l) = label_prefix(rest) {
                labels.push(rest[..l].to_string());
                rest = rest[l + 1..].trim_start();
            }
            let ins = if rest.is_empty() {
                None
            } else {
                Some(
                    match arch {
                        Arch::AArch64 => aarch64::instruction(rest),
                        Arch::X86_64 => x86_64::instruction(rest),
                    }
                    .map_err(|e| format!("P{t}: `{rest}`: {e}"))?,
                )
            };
            threads[t].push(Cell { labels, ins });
        }
    }
    // Labels renamed in sorted order (testHash.ml `refresh_labels` folds a StringSet).
    let mut names: Vec<&str> = threads
        .iter()
        .flatten()
        .flat_map(|c| {
            c.labels
                .iter()
                .map(String::as_str)
                .chain(c.ins.as_ref().and_then(|i| i.target.as_deref()))
        })
        .collect();
    names.sort();
    names.dedup();
    let rename = |l: &str| format!("L{:02}", names.binary_search(&l).expect("collected"));
    let columns: Vec<Vec<String>> = threads
        .iter()
        .map(|cells| {
            let mut col = Vec::new();
            for c in cells {
                for l in &c.labels {
                    col.push(format!("{}:", rename(l)));
                }
                if let Some(i) = &c.ins {
                    col.push(match &i.target {
                        Some(t) => i.text.replace("{L}", &rename(t)),
                        None => i.text.clone(),
                    });
                }
            }
            col
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .map(|c| c.iter().map(String::len).max().unwrap_or(0))
        .collect();
    let height = columns.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = String::new();
    for r in 0..height {
        let line: Vec<String> = columns
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {:<w$} ", c.get(r).map(String::as_str).unwrap_or("")))
            .collect();
        out.push_str(&line.join("|"));
        out.push_str(";\n");
    }
    Ok(out)
}

/// The length of a `NAME` before a `:` that starts `s`, if `s` starts with a label.
fn label_prefix(s: &str) -> Option<usize> {
    if !s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let l = s.find(|c: char| !is_name_char(c))?;
    s[l..].starts_with(':').then_some(l)
}

/// Instruction tokens: names, numbers (value, text), punctuation.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Name(String),
    Num(i64),
    Punct(char),
}

fn parse_int(s: &str) -> Option<i64> {
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else {
        s.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

mod aarch64 {
    //! AArch64 instructions as `lib/AArch64Base.ml` `dump_instruction_hash` prints them
    //! (parsed as `lib/AArch64Parser.mly` parses them).
    use super::{parse_int, Ins, Tok};

    fn tokens(s: &str) -> Result<Vec<Tok>, String> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let c = b[i] as char;
            if c.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            // `#`? (`-`|`+`)? num  (AArch64Lexer.mll)
            let j = if c == '#' { i + 1 } else { i };
            let k = if j < b.len() && (b[j] == b'-' || b[j] == b'+') {
                j + 1
            } else {
                j
            };
            if k < b.len() && b[k].is_ascii_digit() {
                let mut e = k;
                if s[k..].starts_with("0x") || s[k..].starts_with("0X") {
                    e += 2;
                    while e < b.len() && b[e].is_ascii_hexdigit() {
                        e += 1;
                    }
                } else {
                    while e < b.len() && b[e].is_ascii_digit() {
                        e += 1;
                    }
                }
                let v = parse_int(&s[j..e]).ok_or_else(|| format!("number `{}`", &s[i..e]))?;
                out.push(Tok::Num(v));
                i = e;
                continue;
            }
            if c.is_ascii_alphabetic() || c == '_' {
                let mut e = i + 1;
                while e < b.len() && (b[e].is_ascii_alphanumeric() || b"_./-".contains(&b[e])) {
                    e += 1;
                }
                out.push(Tok::Name(s[i..e].to_string()));
                i = e;
                continue;
            }
            if ",[]!{}".contains(c) {
                out.push(Tok::Punct(c));
                i += 1;
                continue;
            }
            return Err(format!(
                "`{c}`: symbolic registers, meta-constants and this syntax are not handled by \
                 the hash"
            ));
        }
        Ok(out)
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum V {
        W,
        X,
    }

    /// A general-purpose register: variant and number (31 = the zero register), or SP.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum R {
        Gpr(V, u8),
        Sp,
    }

    fn reg(name: &str) -> Option<R> {
        let u = name.to_ascii_uppercase();
        match u.as_str() {
            "WZR" => return Some(R::Gpr(V::W, 31)),
            "XZR" => return Some(R::Gpr(V::X, 31)),
            "SP" => return Some(R::Sp),
            "LR" => return Some(R::Gpr(V::X, 30)),
            _ => {}
        }
        let (v, n) = match u.as_bytes().first() {
            Some(b'W') => (V::W, &u[1..]),
            Some(b'X') => (V::X, &u[1..]),
            _ => return None,
        };
        if n.is_empty() || n.len() > 2 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if n.len() == 2 && n.starts_with('0') {
            return None;
        }
        let n: u8 = n.parse().ok()?;
        (n <= 30).then_some(R::Gpr(v, n))
    }

    fn pr(r: R) -> String {
        match r {
            R::Sp => "SP".into(),
            R::Gpr(V::W, 31) => "WZR".into(),
            R::Gpr(V::X, 31) => "XZR".into(),
            R::Gpr(V::W, n) => format!("W{n}"),
            R::Gpr(V::X, n) => format!("X{n}"),
        }
    }

    fn variant(r: R) -> V {
        match r {
            R::Sp => V::X,
            R::Gpr(v, _) => v,
        }
    }

    /// The same register as the 32- or 64-bit view (`pp_vreg v r`).
    fn as_v(r: R, v: V) -> R {
        match r {
            R::Gpr(_, n) => R::Gpr(v, n),
            R::Sp => R::Sp,
        }
    }

    const CONDS: [&str; 15] = [
        "EQ", "NE", "CS", "CC", "MI", "PL", "VS", "VC", "HI", "LS", "GE", "LT", "GT", "LE", "AL",
    ];

    /// `AArch64Base.inverse_cond`, as herdtools7 defines it (GE and LT are not each other's
    /// inverse there: GE -> GT, LT -> GE, LE -> GT, GT -> LE).
    fn inverse(c: &str) -> &'static str {
        match c {
            "NE" => "EQ",
            "EQ" => "NE",
            "LE" => "GT",
            "LT" => "GE",
            "GE" => "GT",
            "GT" => "LE",
            "CS" => "CC",
            "CC" => "CS",
            "MI" => "PL",
            "PL" => "MI",
            "VS" => "VC",
            "VC" => "VS",
            "HI" => "LS",
            "LS" => "HI",
            _ => "AL",
        }
    }

    struct P {
        t: Vec<Tok>,
        i: usize,
    }

    impl P {
        fn peek(&self) -> Option<&Tok> {
            self.t.get(self.i)
        }
        fn end(&self) -> bool {
            self.i >= self.t.len()
        }
        fn punct(&mut self, c: char) -> Result<(), String> {
            match self.peek() {
                Some(Tok::Punct(p)) if *p == c => {
                    self.i += 1;
                    Ok(())
                }
                t => Err(format!("expected `{c}`, found {t:?}")),
            }
        }
        fn is_punct(&self, c: char) -> bool {
            matches!(self.peek(), Some(Tok::Punct(p)) if *p == c)
        }
        fn comma(&mut self) -> Result<(), String> {
            self.punct(',')
        }
        fn reg(&mut self) -> Result<R, String> {
            match self.peek() {
                Some(Tok::Name(n)) => {
                    let r = reg(n).ok_or_else(|| format!("`{n}` is not a W/X register"))?;
                    self.i += 1;
                    Ok(r)
                }
                t => Err(format!("expected a register, found {t:?}")),
            }
        }
        fn wreg(&mut self) -> Result<R, String> {
            let r = self.reg()?;
            if variant(r) != V::W || r == R::Sp {
                return Err(format!("expected a W register, found {}", pr(r)));
            }
            Ok(r)
        }
        fn xreg(&mut self) -> Result<R, String> {
            let r = self.reg()?;
            if variant(r) != V::X {
                return Err(format!("expected an X register, found {}", pr(r)));
            }
            Ok(r)
        }
        fn num(&mut self) -> Result<i64, String> {
            match self.peek() {
                Some(Tok::Num(v)) => {
                    let v = *v;
                    self.i += 1;
                    Ok(v)
                }
                t => Err(format!("expected a number, found {t:?}")),
            }
        }
        fn word(&mut self) -> Result<String, String> {
            match self.peek() {
                Some(Tok::Name(n)) => {
                    let n = n.clone();
                    self.i += 1;
                    Ok(n)
                }
                t => Err(format!("expected a name, found {t:?}")),
            }
        }
        fn keyword(&mut self, k: &str) -> bool {
            match self.peek() {
                Some(Tok::Name(n)) if n == k || *n == k.to_ascii_lowercase() => {
                    self.i += 1;
                    true
                }
                _ => false,
            }
        }
        fn label(&mut self) -> Result<String, String> {
            match self.peek() {
                Some(Tok::Name(n)) if reg(n).is_none() => {
                    let n = n.clone();
                    self.i += 1;
                    Ok(n)
                }
                t => Err(format!("expected a label, found {t:?}")),
            }
        }
        fn cond(&mut self) -> Result<&'static str, String> {
            let w = self.word()?;
            CONDS
                .iter()
                .find(|c| **c == w || c.to_ascii_lowercase() == w)
                .copied()
                .ok_or_else(|| format!("`{w}` is not a condition"))
        }
        fn done(&self) -> Result<(), String> {
            match self.peek() {
                None => Ok(()),
                Some(t) => Err(format!("unexpected {t:?} at the end")),
            }
        }

        /// `[Xn]`, `[Xn,#k]`, `[Xn],#k`, `[Xn,#k]!`, `[Xn,Rm]`, `[Xn,Rm,EXT]`,
        /// `[Xn,Rm,EXT #k]` (`mem_ea`), printed as `pp_addr` prints it in compat mode.
        fn mem_ea(&mut self, pair: bool) -> Result<String, String> {
            self.punct('[')?;
            let base = pr(self.xreg()?);
            if self.is_punct(']') {
                self.i += 1;
                if self.is_punct(',') {
                    self.i += 1;
                    let k = self.num()?;
                    // PostIdx in compat mode: no comma, and a space before a pair's `[`.
                    return Ok(format!("{}[{base}]#{k}", if pair { " " } else { "" }));
                }
                return Ok(format!("[{base}]"));
            }
            self.comma()?;
            if let Some(Tok::Num(_)) = self.peek() {
                let k = self.num()?;
                self.punct(']')?;
                if self.is_punct('!') {
                    self.i += 1;
                    return Ok(format!("[{base},#{k}]!"));
                }
                return Ok(if k == 0 {
                    format!("[{base}]")
                } else {
                    format!("[{base},#{k}]")
                });
            }
            if pair {
                return Err("register offsets are not allowed in a pair's address".into());
            }
            let rm = pr(self.reg()?);
            if self.is_punct(']') {
                self.i += 1;
                return Ok(format!("[{base},{rm}]"));
            }
            self.comma()?;
            let ext = self.word()?.to_ascii_uppercase();
            if !["UXTW", "LSL", "SXTW", "SXTX"].contains(&ext.as_str()) {
                return Err(format!("address extension `{ext}` not handled"));
            }
            let k = if let Some(Tok::Num(_)) = self.peek() {
                self.num()?
            } else {
                0
            };
            self.punct(']')?;
            Ok(match (ext.as_str(), k) {
                ("LSL", 0) => format!("[{base},{rm}]"),
                (_, 0) => format!("[{base},{rm},{ext}]"),
                _ => format!("[{base},{rm},{ext} #{k}]"),
            })
        }

        /// `[Xn]` or `[Xn,#0]` (the `LBRK cxreg zeroopt RBRK` of the atomic instructions).
        fn mem_zero(&mut self) -> Result<String, String> {
            self.punct('[')?;
            let base = pr(self.xreg()?);
            if self.is_punct(',') {
                self.i += 1;
                if self.num()? != 0 {
                    return Err("only a zero offset is allowed here".into());
                }
            }
            self.punct(']')?;
            Ok(format!("[{base}]"))
        }

        /// `[Xn]` only (`LBRK cxreg RBRK`).
        fn mem_plain(&mut self) -> Result<String, String> {
            self.punct('[')?;
            let base = pr(self.xreg()?);
            self.punct(']')?;
            Ok(format!("[{base}]"))
        }

        /// The last operand of a data-processing instruction (`op_ext_w`/`op_ext_x`), printed as
        /// `OpExt.pp_ext` prints it.
        fn op_ext(&mut self, v: V) -> Result<String, String> {
            if let Some(Tok::Num(_)) = self.peek() {
                let k = self.num()?;
                if self.is_punct(',') {
                    self.i += 1;
                    if !self.keyword("LSL") {
                        return Err("only `LSL #n` may follow an immediate".into());
                    }
                    let s = self.num()?;
                    return Ok(if s == 0 {
                        format!("#{k}")
                    } else {
                        format!("#{k},LSL #{s}")
                    });
                }
                return Ok(format!("#{k}"));
            }
            let r = self.reg()?;
            if variant(r) != v {
                return Err(format!(
                    "`{}`: extended-register forms are not handled by the hash",
                    pr(r)
                ));
            }
            let mut out = pr(r);
            if self.is_punct(',') {
                self.i += 1;
                let sh = self.word()?.to_ascii_uppercase();
                if !["LSL", "LSR", "ASR", "ROR"].contains(&sh.as_str()) {
                    return Err(format!("shift `{sh}` not handled"));
                }
                let k = self.num()?;
                if k != 0 {
                    out.push_str(&format!(",{sh} #{k}"));
                }
            }
            Ok(out)
        }
    }

    /// `name` is the mnemonic as herdtools7's keyword table takes it: all lower or all upper
    /// case.
    fn mnemonic(name: &str) -> Option<String> {
        if name == name.to_ascii_lowercase() || name == name.to_ascii_uppercase() {
            Some(name.to_ascii_uppercase())
        } else {
            None
        }
    }

    /// Split an atomic mnemonic `BASE{,A,L,AL}{,B,H}`: the ordering and size suffixes.
    fn rmw_suffix<'a>(m: &'a str, base: &str) -> Option<(&'a str, &'a str)> {
        let rest = m.strip_prefix(base)?;
        for o in ["AL", "A", "L", ""] {
            if let Some(sz) = rest.strip_prefix(o) {
                if ["", "B", "H"].contains(&sz) {
                    return Some((o, sz));
                }
            }
        }
        None
    }

    const ATOMIC_OPS: [&str; 8] = ["ADD", "EOR", "SET", "CLR", "SMAX", "SMIN", "UMAX", "UMIN"];

    pub(super) fn instruction(text: &str) -> Result<Ins, String> {
        let t = tokens(text)?;
        let mut p = P { t, i: 0 };
        let m0 = p.word()?;
        let m = mnemonic(&m0).ok_or_else(|| format!("mnemonic `{m0}` in mixed case"))?;
        let plain = |s: String| Ins {
            text: s,
            target: None,
        };
        let out = match m.as_str() {
            "NOP" => plain("NOP".into()),
            "HINT" | "HLT" => {
                p.num()?;
                plain("NOP".into())
            }
            "ISB" => plain("ISB".into()),
            "DMB" | "DSB" => {
                let o = p.word()?.to_ascii_uppercase();
                let opt = match o.as_str() {
                    "SY" | "ST" | "LD" | "OSH" | "OSHST" | "OSHLD" | "ISH" | "ISHST" | "ISHLD"
                    | "NSH" | "NSHST" | "NSHLD" => o,
                    _ => return Err(format!("barrier option `{o}` not handled")),
                };
                plain(format!("{m} {opt}"))
            }
            "B" | "BL" => Ins {
                text: format!("{m} {{L}}"),
                target: Some(p.label()?),
            },
            "BR" | "BLR" => plain(format!("{m} {}", pr(p.xreg()?))),
            "RET" => {
                if p.end() {
                    plain("RET".into())
                } else {
                    plain(format!("RET {}", pr(p.xreg()?)))
                }
            }
            _ if m.starts_with("B.") => {
                let c = match &m[2..] {
                    "NONE" => "EQ",
                    "ANY" => "NE",
                    c => CONDS
                        .iter()
                        .find(|x| **x == c)
                        .copied()
                        .ok_or_else(|| format!("branch condition `{c}` not handled"))?,
                };
                Ins {
                    text: format!("B.{c} {{L}}"),
                    target: Some(p.label()?),
                }
            }
            "CBZ" | "CBNZ" => {
                let r = pr(p.reg()?);
                p.comma()?;
                Ins {
                    text: format!("{m} {r},{{L}}"),
                    target: Some(p.label()?),
                }
            }
            "TBZ" | "TBNZ" => {
                let r = pr(p.reg()?);
                p.comma()?;
                let k = p.num()?;
                p.comma()?;
                Ins {
                    text: format!("{m} {r},#{k},{{L}}"),
                    target: Some(p.label()?),
                }
            }
            "ADR" => {
                let r = pr(p.xreg()?);
                p.comma()?;
                Ins {
                    // compat mode prints ADR as ADDR (AArch64Base.ml).
                    text: format!("ADDR {r},{{L}}"),
                    target: Some(p.label()?),
                }
            }
            "LDR" | "STR" => {
                let r = p.reg()?;
                if r == R::Sp {
                    return Err("SP as a transfer register".into());
                }
                p.comma()?;
                plain(format!("{m} {},{}", pr(r), p.mem_ea(false)?))
            }
            "LDRB" | "LDRH" | "STRB" | "STRH" => {
                let r = pr(p.wreg()?);
                p.comma()?;
                plain(format!("{m} {r},{}", p.mem_ea(false)?))
            }
            "LDRSW" => {
                let r = pr(p.xreg()?);
                p.comma()?;
                plain(format!("{m} {r},{}", p.mem_ea(false)?))
            }
            "LDRSB" | "LDRSH" => {
                let r = pr(p.reg()?);
                p.comma()?;
                plain(format!("{m} {r},{}", p.mem_ea(false)?))
            }
            "LDAR" | "LDXR" | "LDAXR" | "LDAPR" | "STLR" => {
                let r = pr(p.reg()?);
                p.comma()?;
                plain(format!("{m} {r},{}", p.mem_plain()?))
            }
            "LDARB" | "LDARH" | "LDXRB" | "LDXRH" | "LDAXRB" | "LDAXRH" | "LDAPRB" | "LDAPRH"
            | "STLRB" | "STLRH" => {
                let r = pr(p.wreg()?);
                p.comma()?;
                plain(format!("{m} {r},{}", p.mem_plain()?))
            }
            "STXR" | "STLXR" | "STXRB" | "STXRH" | "STLXRB" | "STLXRH" => {
                let s = pr(p.wreg()?);
                p.comma()?;
                let r = if m.ends_with('B') || m.ends_with('H') {
                    p.wreg()?
                } else {
                    p.reg()?
                };
                p.comma()?;
                plain(format!("{m} {s},{},{}", pr(r), p.mem_plain()?))
            }
            "LDXP" | "LDAXP" => {
                let r1 = p.reg()?;
                p.comma()?;
                let r2 = p.reg()?;
                if variant(r1) != variant(r2) {
                    return Err("pair registers of different sizes".into());
                }
                p.comma()?;
                // compat mode prints the first register as a W register (pp_ldxp).
                plain(format!(
                    "{m} {},{},{}",
                    pr(as_v(r1, V::W)),
                    pr(r2),
                    p.mem_plain()?
                ))
            }
            "STXP" | "STLXP" => {
                let s = pr(p.wreg()?);
                p.comma()?;
                let r1 = p.reg()?;
                p.comma()?;
                let r2 = p.reg()?;
                if variant(r1) != variant(r2) {
                    return Err("pair registers of different sizes".into());
                }
                p.comma()?;
                plain(format!("{m} {s},{},{},{}", pr(r1), pr(r2), p.mem_plain()?))
            }
            "LDP" | "STP" | "LDNP" | "STNP" | "LDPSW" => {
                let r1 = p.reg()?;
                p.comma()?;
                let r2 = p.reg()?;
                if variant(r1) != variant(r2) || (m == "LDPSW" && variant(r1) != V::X) {
                    return Err("pair registers of different sizes".into());
                }
                p.comma()?;
                plain(format!("{m} {},{},{}", pr(r1), pr(r2), p.mem_ea(true)?))
            }
            _ if rmw_suffix(&m, "CAS").is_some() && !m.starts_with("CASP") => {
                let (_, sz) = rmw_suffix(&m, "CAS").expect("checked");
                three_reg_atomic(&mut p, &m, sz)?
            }
            _ if rmw_suffix(&m, "SWP").is_some() => {
                let (_, sz) = rmw_suffix(&m, "SWP").expect("checked");
                three_reg_atomic(&mut p, &m, sz)?
            }
            _ if ATOMIC_OPS
                .iter()
                .any(|o| rmw_suffix(&m, &format!("LD{o}")).is_some()) =>
            {
                let o = ATOMIC_OPS
                    .iter()
                    .find(|o| rmw_suffix(&m, &format!("LD{o}")).is_some())
                    .expect("checked");
                let (_, sz) = rmw_suffix(&m, &format!("LD{o}")).expect("checked");
                three_reg_atomic(&mut p, &m, sz)?
            }
            _ if ATOMIC_OPS.iter().any(|o| st_op(&m, o).is_some()) => {
                let o = ATOMIC_OPS
                    .iter()
                    .find(|o| st_op(&m, o).is_some())
                    .expect("checked");
                let sz = st_op(&m, o).expect("checked");
                let r = if sz.is_empty() { p.reg()? } else { p.wreg()? };
                p.comma()?;
                plain(format!("{m} {},{}", pr(r), p.mem_zero()?))
            }
            "MOV" => {
                let rd = p.reg()?;
                p.comma()?;
                if let Some(Tok::Num(_)) = p.peek() {
                    plain(format!("MOV {},#{}", pr(rd), p.num()?))
                } else {
                    let rs = p.reg()?;
                    if variant(rs) != variant(rd) {
                        return Err("MOV between registers of different sizes".into());
                    }
                    plain(format!("MOV {},{}", pr(rd), pr(rs)))
                }
            }
            "MOVZ" | "MOVN" | "MOVK" => {
                let rd = pr(p.reg()?);
                p.comma()?;
                let k = p.num()?;
                if p.is_punct(',') {
                    p.i += 1;
                    if !p.keyword("LSL") {
                        return Err("only `LSL #n` may follow the immediate".into());
                    }
                    let s = p.num()?;
                    plain(format!("{m} {rd},#{k},LSL #{s}"))
                } else {
                    plain(format!("{m} {rd},#{k}"))
                }
            }
            "SXTW" => {
                let rd = pr(p.xreg()?);
                p.comma()?;
                plain(format!("SXTW {rd},{}", pr(p.wreg()?)))
            }
            "ADD" | "ADDS" | "SUB" | "SUBS" | "EOR" | "EON" | "ORR" | "ORN" | "AND" | "ANDS"
            | "BIC" | "BICS" | "ASR" | "LSR" | "LSL" | "ROR" | "ASRV" | "LSRV" | "LSLV"
            | "RORV" => {
                let op = m.trim_end_matches('V');
                let op = if m.len() == 4 && m.ends_with('V') {
                    op
                } else {
                    m.as_str()
                };
                let rd = p.reg()?;
                p.comma()?;
                let rn = p.reg()?;
                if variant(rd) != variant(rn) {
                    return Err("operands of different sizes".into());
                }
                p.comma()?;
                let e = p.op_ext(variant(rd))?;
                op3(op, rd, rn, e)
            }
            "CMP" | "TST" => {
                let rn = p.reg()?;
                p.comma()?;
                let e = p.op_ext(variant(rn))?;
                // CMP is SUBS and TST is ANDS with the zero register as destination; the
                // printer shows them as CMP/TST again.
                plain(format!("{m} {},{e}", pr(rn)))
            }
            "NEG" | "NEGS" | "MVN" => {
                let rd = p.reg()?;
                p.comma()?;
                if let Some(Tok::Num(_)) = p.peek() {
                    return Err(format!("{m} takes a register"));
                }
                let e = p.op_ext(variant(rd))?;
                let zr = R::Gpr(variant(rd), 31);
                let op = match m.as_str() {
                    "NEG" => "SUB",
                    "NEGS" => "SUBS",
                    _ => "ORN",
                };
                op3(op, rd, zr, e)
            }
            "CSEL" | "CSINC" | "CSINV" | "CSNEG" => {
                let rd = p.reg()?;
                p.comma()?;
                let rn = p.reg()?;
                p.comma()?;
                let rm = p.reg()?;
                p.comma()?;
                let c = p.cond()?;
                if variant(rd) != variant(rn) || variant(rd) != variant(rm) {
                    return Err("operands of different sizes".into());
                }
                csel(&m, rd, rn, rm, c)
            }
            "CSET" | "CSETM" => {
                let rd = p.reg()?;
                p.comma()?;
                let c = inverse(p.cond()?);
                let zr = R::Gpr(variant(rd), 31);
                csel(if m == "CSET" { "CSINC" } else { "CSINV" }, rd, zr, zr, c)
            }
            "CINC" => {
                let rd = p.reg()?;
                p.comma()?;
                let rn = p.reg()?;
                p.comma()?;
                let c = inverse(p.cond()?);
                csel("CSINC", rd, rn, rn, c)
            }
            _ => return Err(format!("instruction `{m0}` is not handled by the hash")),
        };
        p.done()?;
        Ok(out)
    }

    /// `ST<op>{,L}{,B,H}`: the size suffix.
    fn st_op<'a>(m: &'a str, op: &str) -> Option<&'a str> {
        let rest = m.strip_prefix("ST")?.strip_prefix(op)?;
        let rest = rest.strip_prefix('L').unwrap_or(rest);
        ["", "B", "H"].contains(&rest).then_some(rest)
    }

    /// CAS/SWP/LD<op>: `Rs,Rt,[Xn]`.
    fn three_reg_atomic(p: &mut P, m: &str, sz: &str) -> Result<Ins, String> {
        let (r1, r2) = if sz.is_empty() {
            let r1 = p.reg()?;
            p.comma()?;
            let r2 = p.reg()?;
            if variant(r1) != variant(r2) {
                return Err("operands of different sizes".into());
            }
            (r1, r2)
        } else {
            let r1 = p.wreg()?;
            p.comma()?;
            (r1, p.wreg()?)
        };
        p.comma()?;
        Ok(Ins {
            text: format!("{m} {},{},{}", pr(r1), pr(r2), p.mem_zero()?),
            target: None,
        })
    }

    /// `I_OP3` as the compat printer shows it (CMP, TST, MVN for the zero-register forms; SUB
    /// and SUBS stay SUB/SUBS in compat mode).
    fn op3(op: &str, rd: R, rn: R, e: String) -> Ins {
        let zr = |r: R| matches!(r, R::Gpr(_, 31));
        let text = match op {
            "SUBS" if zr(rd) => format!("CMP {},{e}", pr(rn)),
            "ANDS" if zr(rd) => format!("TST {},{e}", pr(rn)),
            "ORN" if zr(rn) => format!("MVN {},{e}", pr(rd)),
            _ => format!("{op} {},{},{e}", pr(rd), pr(rn)),
        };
        Ins { text, target: None }
    }

    /// `I_CSEL` as the printer shows it (CSET, CSETM, CINC for the special forms).
    fn csel(m: &str, rd: R, rn: R, rm: R, c: &str) -> Ins {
        let zr = |r: R| matches!(r, R::Gpr(_, 31));
        let text = match m {
            "CSINC" if zr(rn) && zr(rm) => format!("CSET {},{}", pr(rd), inverse(c)),
            "CSINV" if zr(rn) && zr(rm) => format!("CSETM {},{}", pr(rd), inverse(c)),
            "CSINC" if rn == rm => format!("CINC {},{},{}", pr(rd), pr(rn), inverse(c)),
            _ => format!("{m} {},{},{},{c}", pr(rd), pr(rn), pr(rm)),
        };
        Ins { text, target: None }
    }
}

mod x86_64 {
    //! X86_64 instructions as `lib/X86_64Base.ml` `dump_instruction` prints them (parsed as
    //! `lib/X86_64Parser.mly` parses them).
    use super::{parse_int, Ins, Tok};

    /// Register names `X86_64Base.parse_any_reg` knows (matched in lower case).
    const REGS: [&str; 70] = [
        "cs", "rip", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
        "r11", "r12", "r13", "r14", "r15", "eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp",
        "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d", "ax", "bx", "cx", "dx", "si",
        "di", "bp", "sp", "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w", "al", "bl",
        "cl", "dl", "sil", "dil", "bpl", "spl", "r8b", "r9b", "r10b", "r11b", "r12b", "r13b",
        "r14b", "r15b", "ah", "bh", "ch", "dh",
    ];

    fn arch_reg(name: &str) -> Option<String> {
        let l = name.to_ascii_lowercase();
        REGS.contains(&l.as_str()).then_some(l)
    }

    #[derive(Clone, Debug, PartialEq)]
    enum T {
        Tok(Tok),
        /// `%name` or a bare register name: the register as printed (`%eax`).
        Reg(String),
        /// `$n`.
        Imm(i64),
    }

    fn tokens(s: &str) -> Result<Vec<T>, String> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        let name_end = |mut e: usize| {
            while e < b.len() && (b[e].is_ascii_alphanumeric() || b"_/.-".contains(&b[e])) {
                e += 1;
            }
            e
        };
        while i < b.len() {
            let c = b[i] as char;
            if c.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            let num_at = |j: usize| {
                let k = if j < b.len() && b[j] == b'-' {
                    j + 1
                } else {
                    j
                };
                let mut e = k;
                while e < b.len() && b[e].is_ascii_digit() {
                    e += 1;
                }
                (e > k).then_some(e)
            };
            if c == '$' {
                let e = num_at(i + 1).ok_or("`$` without a number")?;
                out.push(T::Imm(parse_int(&s[i + 1..e]).ok_or("number")?));
                i = e;
                continue;
            }
            if let Some(e) = num_at(i) {
                out.push(T::Tok(Tok::Num(parse_int(&s[i..e]).ok_or("number")?)));
                i = e;
                continue;
            }
            if c == '%' {
                let e = name_end(i + 1);
                let n = &s[i + 1..e];
                if n.is_empty() {
                    return Err("`%` without a register name".into());
                }
                match arch_reg(n) {
                    Some(r) => out.push(T::Reg(format!("%{r}"))),
                    None if n.to_ascii_lowercase().starts_with("xmm") => {
                        return Err(format!("`%{n}`: XMM registers are not handled by the hash"))
                    }
                    None => {
                        return Err(format!(
                            "`%{n}`: symbolic registers are not handled by the hash"
                        ))
                    }
                }
                i = e;
                continue;
            }
            if c.is_ascii_alphabetic() || c == '_' {
                let e = name_end(i + 1);
                let n = &s[i..e];
                match arch_reg(n) {
                    Some(r) => out.push(T::Reg(format!("%{r}"))),
                    None => out.push(T::Tok(Tok::Name(n.to_string()))),
                }
                i = e;
                continue;
            }
            if ",()[]:".contains(c) {
                out.push(T::Tok(Tok::Punct(c)));
                i += 1;
                continue;
            }
            return Err(format!("`{c}` is not handled by the hash"));
        }
        Ok(out)
    }

    struct P {
        t: Vec<T>,
        i: usize,
    }

    impl P {
        fn peek(&self) -> Option<&T> {
            self.t.get(self.i)
        }
        fn punct(&mut self, c: char) -> Result<(), String> {
            match self.peek() {
                Some(T::Tok(Tok::Punct(p))) if *p == c => {
                    self.i += 1;
                    Ok(())
                }
                t => Err(format!("expected `{c}`, found {t:?}")),
            }
        }
        fn is_punct(&self, c: char) -> bool {
            matches!(self.peek(), Some(T::Tok(Tok::Punct(p))) if *p == c)
        }
        fn reg(&mut self) -> Result<String, String> {
            match self.peek() {
                Some(T::Reg(r)) => {
                    let r = r.clone();
                    self.i += 1;
                    Ok(r)
                }
                t => Err(format!("expected a register, found {t:?}")),
            }
        }
        /// `effaddr` (`rm64`), printed as `pp_rm64` prints it.
        fn effaddr(&mut self) -> Result<String, String> {
            let off = if let Some(T::Tok(Tok::Num(k))) = self.peek() {
                let k = *k;
                self.i += 1;
                Some(k)
            } else {
                None
            };
            let pp_off = |o: i64| if o == 0 { String::new() } else { o.to_string() };
            match self.peek() {
                Some(T::Reg(_)) if off.is_none() => {
                    let r = self.reg()?;
                    if self.is_punct(':') {
                        return Err("segment-prefixed addresses are not handled".into());
                    }
                    Ok(r)
                }
                Some(T::Tok(Tok::Punct(open @ ('(' | '[')))) => {
                    let close = if *open == '(' { ')' } else { ']' };
                    self.i += 1;
                    match self.peek().cloned() {
                        Some(T::Tok(Tok::Name(x))) if off.is_none() => {
                            self.i += 1;
                            self.punct(close)?;
                            Ok(format!("({x})"))
                        }
                        Some(T::Reg(_)) => {
                            let r1 = self.reg()?;
                            if close == ')' && self.is_punct(',') {
                                self.i += 1;
                                let r2 = self.reg()?;
                                self.punct(',')?;
                                let o2 = match self.peek() {
                                    Some(T::Tok(Tok::Num(k))) => *k,
                                    t => return Err(format!("expected a scale, found {t:?}")),
                                };
                                self.i += 1;
                                self.punct(')')?;
                                return Ok(format!(
                                    "{}({r1}, {r2},{})",
                                    pp_off(off.unwrap_or(0)),
                                    pp_off(o2)
                                ));
                            }
                            self.punct(close)?;
                            Ok(format!("{}({r1})", pp_off(off.unwrap_or(0))))
                        }
                        t => Err(format!("address form {t:?} not handled by the hash")),
                    }
                }
                t => Err(format!("expected an address or register, found {t:?}")),
            }
        }
        /// `operand`: an immediate (`$n` or `n`) or an `effaddr`.
        fn operand(&mut self) -> Result<String, String> {
            match self.peek() {
                Some(T::Imm(k)) => {
                    let k = *k;
                    self.i += 1;
                    Ok(format!("${k}"))
                }
                Some(T::Tok(Tok::Num(k))) if !self.next_is_open() => {
                    let k = *k;
                    self.i += 1;
                    Ok(format!("${k}"))
                }
                _ => self.effaddr(),
            }
        }
        fn next_is_open(&self) -> bool {
            matches!(self.t.get(self.i + 1), Some(T::Tok(Tok::Punct('(' | '['))))
        }
        fn done(&self) -> Result<(), String> {
            match self.peek() {
                None => Ok(()),
                Some(t) => Err(format!("unexpected {t:?} at the end")),
            }
        }
    }

    /// The mnemonic as the lexer's keyword table takes it (all lower or all upper case).
    fn mnemonic(name: &str) -> Option<String> {
        (name == name.to_ascii_lowercase() || name == name.to_ascii_uppercase())
            .then(|| name.to_ascii_lowercase())
    }

    /// `base` with a size suffix among `sizes` (`""` for none).
    fn sized<'a>(m: &'a str, base: &str, sizes: &[&str]) -> Option<&'a str> {
        let s = m.strip_prefix(base)?;
        sizes.contains(&s).then_some(s)
    }

    const ALL: [&str; 5] = ["", "b", "w", "l", "q"];

    fn body(p: &mut P) -> Result<Ins, String> {
        let m0 = match p.peek() {
            Some(T::Tok(Tok::Name(n))) => n.clone(),
            t => return Err(format!("expected a mnemonic, found {t:?}")),
        };
        p.i += 1;
        let m = mnemonic(&m0).ok_or_else(|| format!("mnemonic `{m0}` in mixed case"))?;
        let plain = |s: String| Ins {
            text: s,
            target: None,
        };
        let jcc = [
            ("je", "je"),
            ("jne", "jne"),
            ("jle", "jle"),
            ("jlt", "jl"),
            ("jge", "jge"),
            ("jgt", "jg"),
            ("js", "js"),
            ("jns", "jns"),
            ("jmp", "jmp"),
        ];
        if m == "lock" {
            let inner = body(p)?;
            return Ok(Ins {
                text: format!("lock; {}", inner.text),
                target: inner.target,
            });
        }
        if let Some((_, out)) = jcc.iter().find(|(j, _)| *j == m) {
            let l = match p.peek() {
                Some(T::Tok(Tok::Name(n))) => n.clone(),
                t => return Err(format!("expected a label, found {t:?}")),
            };
            p.i += 1;
            return Ok(Ins {
                text: format!("{out} {{L}}"),
                target: Some(l),
            });
        }
        // `operand, effaddr` instructions: add/xor/mov/cmp/or with any size suffix, and/shl bare
        // (the X86_64 lexer's keyword table).
        let two_op = ["add", "xor", "mov", "cmp", "or"]
            .iter()
            .any(|b| sized(&m, b, &ALL).is_some())
            || m == "and"
            || m == "shl";
        let ins = if two_op {
            let op = p.operand()?;
            p.punct(',')?;
            let ea = p.effaddr()?;
            plain(format!("{m} {op},{ea}"))
        } else if ["dec", "inc"].iter().any(|b| sized(&m, b, &ALL).is_some())
            || m == "setnb"
            || m == "clflush"
            || m == "clflushopt"
        {
            plain(format!("{m} {}", p.effaddr()?))
        } else if ["xchg", "uxch"]
            .iter()
            .any(|b| sized(&m, b, &ALL).is_some())
        {
            let a = p.effaddr()?;
            p.punct(',')?;
            plain(format!("{m} {a},{}", p.effaddr()?))
        } else if sized(&m, "cmpxchg", &ALL).is_some() {
            let a = p.effaddr()?;
            p.punct(',')?;
            plain(format!("{m} {a},{}", p.reg()?))
        } else if sized(&m, "cmovc", &ALL).is_some()
            || sized(&m, "movnti", &["", "l", "q"]).is_some()
        {
            let r = p.reg()?;
            p.punct(',')?;
            plain(format!("{m} {r},{}", p.effaddr()?))
        } else {
            match m.as_str() {
                "mfence" | "sfence" | "lfence" => plain(m.clone()),
                "ret" | "retq" => plain("ret".into()),
                "nop" | "endbr64" => plain("NOP".into()),
                "nopl" | "nopw" => {
                    p.effaddr()?;
                    plain("NOP".into())
                }
                _ => return Err(format!("instruction `{m0}` is not handled by the hash")),
            }
        };
        Ok(ins)
    }

    pub(super) fn instruction(text: &str) -> Result<Ins, String> {
        let mut p = P {
            t: tokens(text)?,
            i: 0,
        };
        let ins = body(&mut p)?;
        p.done()?;
        Ok(ins)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SB_X86: &str = "X86_64 SB\n\"PodWR Fre PodWR Fre\"\nCycle=Fre PodWR Fre PodWR\n\
        Relax=\nSafe=Fre PodWR\nGenerator=diy7 (version 7.57+1)\n\
        Prefetch=0:x=F,0:y=T,1:y=F,1:x=T\nCom=Fr Fr\nOrig=PodWR Fre PodWR Fre\n{\n}\n \
        P0            | P1            ;\n movl $1,(x)   | movl $1,(y)   ;\n \
        movl (y),%eax | movl (x),%eax ;\nexists (0:rax=0 /\\ 1:rax=0)\n";

    #[test]
    fn x86_sb_matches_litmus7_log() {
        // /work/shared/litmus/sample-litmus7-x86_64.log: `Hash=055f9747fd517835a93f2f188e15e163`
        // for this test, which carries no Hash= line of its own.
        assert_eq!(
            computed_hash(SB_X86).unwrap(),
            "055f9747fd517835a93f2f188e15e163"
        );
        assert_eq!(test_name(SB_X86).unwrap(), "SB");
    }

    #[test]
    fn code_layout_pads_columns_and_drops_empty_cells() {
        let code = " P0 | P1 ;\n movl $1,(x) | ;\n | movl (x),%eax ;\n";
        assert_eq!(
            code_text(Arch::X86_64, code).unwrap(),
            " movl $1,(x) | movl (x),%eax ;\n"
        );
    }

    #[test]
    fn labels_are_renamed_in_sorted_order() {
        let code = " P0 ;\n CBNZ W0,over ;\n B.EQ LC00 ;\n over: ;\n LC00: ;\n";
        // Sorted: LC00 -> L00, over -> L01.
        assert_eq!(
            code_text(Arch::AArch64, code).unwrap(),
            " CBNZ W0,L01 ;\n B.EQ L00    ;\n L01:        ;\n L00:        ;\n"
        );
    }

    #[test]
    fn aarch64_printing_follows_the_compat_printer() {
        for (src, want) in [
            ("MOV W0, #1", "MOV W0,#1"),
            ("mov w0,#0x10", "MOV W0,#16"),
            ("LDR W0, [X1,W2,SXTW]", "LDR W0,[X1,W2,SXTW]"),
            ("LDR X0,[X1,X2,LSL #3]", "LDR X0,[X1,X2,LSL #3]"),
            ("STR W0,[X1],#4", "STR W0,[X1]#4"),
            ("LDR W0,[X1,#0]", "LDR W0,[X1]"),
            ("LDP W0,W1,[X2],#8", "LDP W0,W1, [X2]#8"),
            ("LDXP X0,X1,[X2]", "LDXP W0,X1,[X2]"),
            ("NEG W0,W1", "SUB W0,WZR,W1"),
            ("SUBS WZR,W0,#1", "CMP W0,#1"),
            ("CSINC W0,WZR,WZR,NE", "CSET W0,EQ"),
            ("CSET W0,GE", "CSET W0,LE"),
            ("CSEL W0, WZR, W1, NE", "CSEL W0,WZR,W1,NE"),
            ("STADD W10, [X3]", "STADD W10,[X3]"),
            ("LDADD W10,WZR,[X3]", "LDADD W10,WZR,[X3]"),
            ("CAS W1,W2,[X0,#0]", "CAS W1,W2,[X0]"),
            ("DMB ISHLD", "DMB ISHLD"),
            ("dmb sy", "DMB SY"),
            ("ADR X0,lab", "ADDR X0,{L}"),
        ] {
            assert_eq!(aarch64::instruction(src).unwrap().text, want, "{src}");
        }
        for bad in [
            "LDR W0,[X1,#4]!x",
            "FOO W0",
            "Mov W0,#1",
            "MOV W0,X1",
            "LDR W0,=x",
        ] {
            assert!(aarch64::instruction(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn x86_printing_follows_dump_instruction() {
        for (src, want) in [
            ("MOVL $1,(x)", "movl $1,(x)"),
            ("movq (y),%RAX", "movq (y),%rax"),
            ("xchg %eax,[x]", "xchg %eax,(x)"),
            ("lock addl $1,(x)", "lock; addl $1,(x)"),
            ("movl 8(%rax),%ebx", "movl 8(%rax),%ebx"),
            ("movl (%rax,%rbx,4),%ecx", "movl (%rax, %rbx,4),%ecx"),
            ("jlt L0", "jl {L}"),
        ] {
            assert_eq!(x86_64::instruction(src).unwrap().text, want, "{src}");
        }
        for bad in ["movl %foo,(x)", "movd %xmm0,%eax", "pause"] {
            assert!(x86_64::instruction(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn init_and_observed_print_as_herdtools7() {
        assert_eq!(
            init_text(" 0:X1=x; uint64_t y=0x10; 1:X0=&z; x; int a[2]; _Atomic int w=1; 0:X0=1;")
                .unwrap(),
            "0:X0=1; 0:X1=x; *1:X0=z; int a[2]; _Atomic int w=1; x=0; uint64_t y=0x10"
        );
        assert_eq!(
            observed_text("locations [y; 0:X2;]\nexists (0:X0=1 /\\ ~[x]=2 \\/ 1:X9=x)").unwrap(),
            "0:X0; 0:X2; 1:X9; x; y"
        );
        assert_eq!(
            observed_text("filter 0:X5=1\nexists (0:X0=1)").unwrap(),
            "0:X0"
        );
    }

    #[test]
    fn a_file_hash_line_is_kept_and_meta_data_counts() {
        let with = SB_X86.replace("{\n}", "Hash=0123456789abcdef0123456789abcdef\n{\n}");
        assert_eq!(
            litmus7_hash(&with).unwrap(),
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            computed_hash(&with).unwrap(),
            "055f9747fd517835a93f2f188e15e163"
        );
        let mt = SB_X86.replace("{\n}", "MemoryType=x:Normal\n{\n}");
        assert_ne!(
            computed_hash(&mt).unwrap(),
            "055f9747fd517835a93f2f188e15e163"
        );
    }

    #[test]
    fn unsupported_forms_are_refused_by_name() {
        let e = computed_hash(
            &SB_X86
                .replace("mfence", "x")
                .replace("movl (y),%eax | movl (x),%eax", "pause | movl (x),%eax"),
        )
        .unwrap_err();
        assert!(e.contains("pause"), "{e}");
        assert!(computed_hash("PPC SB\n{}\n P0;\n")
            .unwrap_err()
            .contains("PPC"));
    }
}
