//! The layout's guard (issue 22): it reads `src/` as text and fails on any import loop among
//! files or among rooms (the first folder or file under `src/`), on any function over 130
//! lines, and on more than three over 100; it prints the room graph for the README.
//!
//! An import is any `crate::`, `super::` or `self::` path in code that is not test code: in a
//! `use` tree (nested braces, `self`, `as`, over several lines) or inline (`crate::a::f(..)`).
//! Comments and string literals are blanked first, and `#[cfg(test)]`/`#[test]` items and the
//! files they declare (`#[cfg(test)] mod tests;`) are skipped. A path depends on the file of its
//! longest prefix that is a module: `crate::feed::file::head` on `feed/file.rs`,
//! `crate::feed::FeedId` on `feed/mod.rs`. Bare relative paths (`pub use directory::Access` in
//! `feed/mod.rs`) are not followed: a parent re-exporting its children is not a loop.
//!
//! `cargo nextest run -E 'binary(layout)' --no-capture` prints the whole report (`report` never
//! fails; the other tests fail with their part of it). No crate is used: the parser is plain text
//! work and is tested at the bottom of this file.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Over this many lines a function fails the guard (issue 22, point 3).
const MAX_FUNCTION_LINES: usize = 130;
/// Over this many lines a function is long; at most [`MAX_LONG_FUNCTIONS`] may be.
const LONG_FUNCTION_LINES: usize = 100;
const MAX_LONG_FUNCTIONS: usize = 3;

/// The floor plan the room graph is read against, top floor first; rooms on one line share a
/// floor. A room should import only from floors below its own: an import from its own floor is
/// sideways, from a floor above is upward. Only loops fail the guard; the plan decides how the
/// other edges are printed. From style rule 13 and `shared/layout.md` (whose `engine` is not
/// built yet): the commands and the engine they run on top, then the decision, the feed target,
/// the mapping, the CalDAV target, the source, the configuration, and the plumbing at the
/// bottom; the upward imports `layout.md` counts are the ones this order calls upward.
const FLOOR_PLAN: &[&[&str]] = &[
    &["commands"],
    &["engine"],
    &["feed"],
    &["reconcile"],
    &["mapping"],
    &["caldav"],
    &["plane"],
    &["config"],
    &["cli"],
    &["exit"],
    &["support"],
];

#[test]
fn report() {
    let layout = Layout::read();
    println!("{}", layout.report());
}

#[test]
fn no_import_loop_among_files() {
    let layout = Layout::read();
    let loops = layout.file_loops();
    assert!(loops.is_empty(), "{loops}");
}

#[test]
fn no_import_loop_among_rooms() {
    let layout = Layout::read();
    let loops = layout.room_loops();
    assert!(loops.is_empty(), "{loops}");
}

#[test]
fn no_function_too_long() {
    let layout = Layout::read();
    let problems = layout.function_problems();
    assert!(problems.is_empty(), "{problems}");
}

// ---------------------------------------------------------------------------------------------
// The source tree as a graph.

/// One `.rs` file under `src/` that is not test code, nor the crate root.
struct SourceFile {
    /// The path under `src/` without `.rs`, as the report names it: `feed/mod`, `cli`.
    name: String,
    /// Its module path: `["feed"]` for `feed/mod.rs`, `["feed", "file"]` for `feed/file.rs`.
    module: Vec<String>,
    /// The `crate::`/`super::`/`self::` paths it uses, made absolute.
    references: Vec<Reference>,
    functions: Vec<Function>,
}

impl SourceFile {
    /// Its room: the first segment of its module path.
    fn room(&self) -> &str {
        &self.module[0]
    }

    fn path(&self) -> String {
        format!("src/{}.rs", self.name)
    }
}

/// One file's use of another: `from` names `to` on `line` through `text`.
#[derive(Clone)]
struct Edge {
    from: usize,
    to: usize,
    line: usize,
    text: String,
}

struct Layout {
    files: Vec<SourceFile>,
    /// File-level edges, each use of another file once, in file and line order.
    edges: Vec<Edge>,
    rooms: Vec<String>,
}

impl Layout {
    /// Reads `src/` of this crate.
    fn read() -> Layout {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        rust_files(&src, &mut paths);
        let sources = paths
            .iter()
            .map(|path| {
                let relative = path.strip_prefix(&src).expect("under src/");
                let text = std::fs::read_to_string(path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                (relative.to_path_buf(), text)
            })
            .collect::<Vec<_>>();
        Layout::from_sources(&sources)
    }

    /// Builds the graph from `(path under src/, text)` pairs.
    fn from_sources(sources: &[(PathBuf, String)]) -> Layout {
        let mut parsed = Vec::new();
        let mut test_modules = BTreeSet::new();
        for (relative, text) in sources {
            let module = module_of(relative);
            let blanked = blank_comments_and_literals(text);
            assert_balanced(relative, &blanked);
            let (code, test_children) = without_test_code(&blanked);
            for child in test_children {
                test_modules.insert([module.clone(), vec![child]].concat());
            }
            let name = relative
                .with_extension("")
                .to_string_lossy()
                .replace('\\', "/");
            parsed.push((name, module, code));
        }
        let files = parsed
            .into_iter()
            .filter(|(_, module, _)| {
                !module.is_empty()
                    && !(1..=module.len()).any(|n| test_modules.contains(&module[..n]))
            })
            .map(|(name, module, code)| SourceFile {
                references: references(&code, &module),
                functions: functions(&code),
                name,
                module,
            })
            .collect::<Vec<_>>();
        let by_module = files
            .iter()
            .enumerate()
            .map(|(index, file)| (file.module.clone(), index))
            .collect::<BTreeMap<_, _>>();
        let mut edges = Vec::new();
        for (from, file) in files.iter().enumerate() {
            for reference in &file.references {
                let target = &reference.target;
                let Some(to) = (1..=target.len())
                    .rev()
                    .find_map(|n| by_module.get(&target[..n]).copied())
                else {
                    continue;
                };
                if to != from {
                    edges.push(Edge {
                        from,
                        to,
                        line: reference.line,
                        text: reference.text.clone(),
                    });
                }
            }
        }
        let rooms = files
            .iter()
            .map(|file| file.room().to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Layout {
            files,
            edges,
            rooms,
        }
    }

    fn room_index(&self, file: usize) -> usize {
        let room = self.files[file].room();
        self.rooms
            .iter()
            .position(|r| r == room)
            .expect("known room")
    }

    /// Files importing each other, directly or around a loop: each loop, a shortest cycle
    /// through each of its files, and every import inside it. Empty when there is none.
    fn file_loops(&self) -> String {
        let names = self
            .files
            .iter()
            .map(|f| f.name.clone())
            .collect::<Vec<_>>();
        let edges = self
            .edges
            .iter()
            .map(|e| (e.from, e.to, e.clone()))
            .collect::<Vec<_>>();
        self.loops("files", &names, &edges)
    }

    /// Rooms importing each other: as [`Layout::file_loops`], each room-level import shown with
    /// the file-level imports that make it.
    fn room_loops(&self) -> String {
        let edges = self
            .edges
            .iter()
            .map(|e| (self.room_index(e.from), self.room_index(e.to), e.clone()))
            .filter(|(from, to, _)| from != to)
            .collect::<Vec<_>>();
        self.loops("rooms", &self.rooms, &edges)
    }

    /// The loops among `nodes`, where each `(from, to, edge)` is one import that makes `from`
    /// depend on `to`.
    fn loops(&self, what: &str, nodes: &[String], edges: &[(usize, usize, Edge)]) -> String {
        let mut adjacency = vec![BTreeSet::new(); nodes.len()];
        for (from, to, _) in edges {
            adjacency[*from].insert(*to);
        }
        let components = strongly_connected(&adjacency)
            .into_iter()
            .filter(|component| component.len() > 1)
            .collect::<Vec<_>>();
        let mut out = String::new();
        if components.is_empty() {
            return out;
        }
        let _ = writeln!(out, "Import loops among {what}: {}", components.len());
        for (number, component) in components.iter().enumerate() {
            let members = component.iter().copied().collect::<BTreeSet<_>>();
            let listed = members
                .iter()
                .map(|&n| nodes[n].as_str())
                .collect::<Vec<_>>();
            let _ = writeln!(
                out,
                "\nloop {} ({} {what}): {}",
                number + 1,
                members.len(),
                listed.join(", ")
            );
            let _ = writeln!(out, "  cycles (a shortest one through each of them):");
            let mut seen = BTreeSet::new();
            for &start in &members {
                let cycle = shortest_cycle(&adjacency, &members, start);
                if seen.insert(rotated_to_smallest(&cycle)) {
                    let shown = cycle.iter().map(|&n| nodes[n].as_str());
                    let _ = writeln!(
                        out,
                        "    {} → {}",
                        shown.collect::<Vec<_>>().join(" → "),
                        nodes[cycle[0]]
                    );
                }
            }
            let _ = writeln!(
                out,
                "  imports inside the loop (cut enough of them to break it):"
            );
            let mut inside = BTreeMap::<(usize, usize), Vec<&Edge>>::new();
            for (from, to, edge) in edges {
                if members.contains(from) && members.contains(to) {
                    inside.entry((*from, *to)).or_default().push(edge);
                }
            }
            for ((from, to), uses) in inside {
                let count = counted(places(&uses).len(), "place");
                let _ = writeln!(out, "    {} → {} ({count})", nodes[from], nodes[to]);
                self.write_uses(&mut out, &uses, 6);
            }
        }
        out
    }

    /// Writes the places of `uses`, one a line as `src/file.rs:line  text`, at most six; the
    /// names one line imports are merged: `crate::config::{Network, Secret}`.
    fn write_uses(&self, out: &mut String, uses: &[&Edge], indent: usize) {
        const SHOWN: usize = 6;
        let places = places(uses);
        for ((from, line), text) in places.iter().take(SHOWN) {
            let path = self.files[*from].path();
            let _ = writeln!(out, "{:indent$}{path}:{line}  {text}", "");
        }
        if places.len() > SHOWN {
            let _ = writeln!(out, "{:indent$}… and {} more", "", places.len() - SHOWN);
        }
    }

    /// Functions over the limits, or empty.
    fn function_problems(&self) -> String {
        let mut out = String::new();
        let long = self.long_functions();
        let (too_long, long_only): (Vec<_>, Vec<_>) =
            long.iter().partition(|(_, f)| f.lines > MAX_FUNCTION_LINES);
        if !too_long.is_empty() {
            let count = counted(too_long.len(), "function");
            let _ = writeln!(
                out,
                "{count} over {MAX_FUNCTION_LINES} lines (none may be):"
            );
            for (file, function) in &too_long {
                let _ = writeln!(out, "  {}", self.describe(*file, function));
            }
        }
        if long.len() > MAX_LONG_FUNCTIONS {
            let _ = write!(
                out,
                "{} over {LONG_FUNCTION_LINES} lines (at most {MAX_LONG_FUNCTIONS} may be)",
                counted(long.len(), "function")
            );
            let _ = writeln!(
                out,
                "{}",
                if too_long.is_empty() {
                    ":"
                } else {
                    "; besides those above:"
                }
            );
            for (file, function) in &long_only {
                let _ = writeln!(out, "  {}", self.describe(*file, function));
            }
        }
        out
    }

    /// Functions over [`LONG_FUNCTION_LINES`], longest first.
    fn long_functions(&self) -> Vec<(usize, &Function)> {
        let mut long = self
            .files
            .iter()
            .enumerate()
            .flat_map(|(index, file)| file.functions.iter().map(move |f| (index, f)))
            .filter(|(_, f)| f.lines > LONG_FUNCTION_LINES)
            .collect::<Vec<_>>();
        long.sort_by_key(|(_, f)| std::cmp::Reverse(f.lines));
        long
    }

    fn describe(&self, file: usize, function: &Function) -> String {
        format!(
            "{}:{} {} {} lines",
            self.files[file].path(),
            function.line,
            function.name,
            function.lines
        )
    }

    /// The room graph, its upward and sideways imports, the loops and the long functions.
    fn report(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "src/: {} files in {} rooms; {} of them import from others, in {} pairs\n",
            self.files.len(),
            self.rooms.len(),
            self.edges
                .iter()
                .map(|e| e.from)
                .collect::<BTreeSet<_>>()
                .len(),
            self.edges
                .iter()
                .map(|e| (e.from, e.to))
                .collect::<BTreeSet<_>>()
                .len()
        );
        out.push_str(&self.room_table());
        let _ = writeln!(out);
        let file_loops = self.file_loops();
        let room_loops = self.room_loops();
        let functions = self.function_problems();
        if file_loops.is_empty() {
            let _ = writeln!(out, "No import loop among files.");
        }
        if room_loops.is_empty() {
            let _ = writeln!(out, "No import loop among rooms.");
        }
        for part in [file_loops, room_loops] {
            if !part.is_empty() {
                let _ = writeln!(out, "{part}");
            }
        }
        if functions.is_empty() {
            let long = self.long_functions();
            let _ = writeln!(
                out,
                "No function over {MAX_FUNCTION_LINES} lines; {} over {LONG_FUNCTION_LINES}.",
                long.len()
            );
            for (file, function) in long {
                let _ = writeln!(out, "  {}", self.describe(file, function));
            }
        } else {
            out.push_str(&functions);
        }
        out
    }

    /// Each room, the rooms it imports, and those of its imports that go up or sideways on
    /// [`FLOOR_PLAN`], with the file-level imports that make them.
    fn room_table(&self) -> String {
        let floor = |room: &str| FLOOR_PLAN.iter().position(|rooms| rooms.contains(&room));
        let mut imports = BTreeMap::<(usize, usize), Vec<&Edge>>::new();
        for edge in &self.edges {
            let (from, to) = (self.room_index(edge.from), self.room_index(edge.to));
            if from != to {
                imports.entry((from, to)).or_default().push(edge);
            }
        }
        let mut order = (0..self.rooms.len()).collect::<Vec<_>>();
        order.sort_by_key(|&r| (floor(&self.rooms[r]).unwrap_or(usize::MAX), r));
        let width = self.rooms.iter().map(String::len).max().unwrap_or(4).max(4);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Rooms, top floor first (FLOOR_PLAN in tests/layout.rs):"
        );
        let _ = writeln!(out, "{:width$}  imports", "room");
        let mut crooked = Vec::new();
        for &room in &order {
            let name = &self.rooms[room];
            let own = floor(name);
            let mut targets = imports
                .keys()
                .filter(|(from, _)| *from == room)
                .map(|&(_, to)| to)
                .collect::<Vec<_>>();
            targets.sort_by_key(|&to| (floor(&self.rooms[to]).unwrap_or(usize::MAX), to));
            let shown = targets
                .iter()
                .map(|&to| {
                    let direction = match (own, floor(&self.rooms[to])) {
                        (Some(own), Some(other)) if other < own => "up",
                        (Some(own), Some(other)) if other == own => "sideways",
                        (Some(_), Some(_)) => "",
                        _ => "off the plan",
                    };
                    if direction.is_empty() {
                        self.rooms[to].clone()
                    } else {
                        crooked.push((room, to, direction));
                        format!("{} ({direction})", self.rooms[to])
                    }
                })
                .collect::<Vec<_>>();
            let shown = if shown.is_empty() {
                "—".to_string()
            } else {
                shown.join(", ")
            };
            let unplanned = if own.is_none() {
                "  (not on FLOOR_PLAN)"
            } else {
                ""
            };
            let _ = writeln!(out, "{name:width$}  {shown}{unplanned}");
        }
        let _ = writeln!(
            out,
            "\nImports that go up, sideways or off the floor plan: {}",
            crooked.len()
        );
        for (from, to, direction) in crooked {
            let uses = &imports[&(from, to)];
            let count = counted(places(uses).len(), "place");
            let (from, to) = (&self.rooms[from], &self.rooms[to]);
            let _ = writeln!(out, "  {from} → {to}: {direction}, {count}");
            self.write_uses(&mut out, uses, 4);
        }
        out
    }
}

/// Fails when the braces of blanked code do not pair up: the guard would misread the file (a
/// literal it does not know?), and it says so rather than measure nonsense.
fn assert_balanced(relative: &Path, blanked: &str) {
    let mut depth = 0i64;
    for (number, line) in blanked.lines().enumerate() {
        for c in line.chars() {
            depth += match c {
                '{' => 1,
                '}' => -1,
                _ => 0,
            };
            assert!(
                depth >= 0,
                "the guard misreads src/{}: a `}}` closes nothing on line {}",
                relative.display(),
                number + 1
            );
        }
    }
    assert_eq!(
        depth,
        0,
        "the guard misreads src/{}: {depth} `{{` left open at its end",
        relative.display()
    );
}

/// The places of `uses`: (file, line) in order, each with the paths named there merged into
/// one `use` tree.
fn places(uses: &[&Edge]) -> Vec<((usize, usize), String)> {
    let mut by_place = BTreeMap::<(usize, usize), Vec<&str>>::new();
    for edge in uses {
        let texts = by_place.entry((edge.from, edge.line)).or_default();
        if !texts.contains(&edge.text.as_str()) {
            texts.push(&edge.text);
        }
    }
    by_place
        .into_iter()
        .map(|(place, texts)| (place, merged(&texts)))
        .collect()
}

/// Paths merged into one `use` tree: `a::b` and `a::b::C` → `a::b::{self, C}`.
fn merged(texts: &[&str]) -> String {
    if let [one] = texts {
        return one.to_string();
    }
    let paths = texts
        .iter()
        .map(|t| t.split("::").collect::<Vec<_>>())
        .collect::<Vec<_>>();
    let shortest = paths.iter().map(Vec::len).min().unwrap_or(0);
    let common = (0..shortest)
        .take_while(|&n| paths.iter().all(|p| p[n] == paths[0][n]))
        .count();
    let rests = paths
        .iter()
        .map(|p| match p[common..].join("::") {
            rest if rest.is_empty() => "self".to_string(),
            rest => rest,
        })
        .collect::<Vec<_>>();
    format!(
        "{}::{{{}}}",
        paths[0][..common].join("::"),
        rests.join(", ")
    )
}

/// `1 place`, `2 places`.
fn counted(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect::<Vec<_>>();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `feed/mod.rs` → `feed`, `feed/file.rs` →
/// `feed::file`, `lib.rs` and `main.rs` → the crate root (empty).
fn module_of(relative: &Path) -> Vec<String> {
    let mut segments = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    if segments.last().is_some_and(|s| s == "mod") {
        segments.pop();
    }
    if segments.len() == 1 && (segments[0] == "lib" || segments[0] == "main") {
        segments.clear();
    }
    segments
}

/// Strongly connected components (Tarjan), each in the order found.
fn strongly_connected(adjacency: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        adjacency: &'a [BTreeSet<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        components: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in s.adjacency[v].iter() {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(index) if s.on_stack[w] => s.low[v] = s.low[v].min(index),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().expect("v is on the stack");
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            component.sort_unstable();
            s.components.push(component);
        }
    }
    let n = adjacency.len();
    let mut state = State {
        adjacency,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for v in 0..n {
        if state.index[v].is_none() {
            visit(&mut state, v);
        }
    }
    state.components.sort();
    state.components
}

/// A shortest cycle from `start` back to it inside `members` (breadth first), without the
/// closing `start`.
fn shortest_cycle(
    adjacency: &[BTreeSet<usize>],
    members: &BTreeSet<usize>,
    start: usize,
) -> Vec<usize> {
    let mut came_from = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &adjacency[v] {
            if !members.contains(&w) {
                continue;
            }
            if w == start {
                let mut cycle = vec![v];
                let mut at = v;
                while at != start {
                    at = came_from[&at];
                    cycle.push(at);
                }
                cycle.reverse();
                return cycle;
            }
            if let std::collections::btree_map::Entry::Vacant(entry) = came_from.entry(w) {
                entry.insert(v);
                queue.push_back(w);
            }
        }
    }
    unreachable!("every member of a strongly connected component lies on a cycle")
}

/// `cycle` rotated to start at its smallest node, so that one cycle found from two of its
/// nodes is printed once.
fn rotated_to_smallest(cycle: &[usize]) -> Vec<usize> {
    let at = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
    [&cycle[at..], &cycle[..at]].concat()
}

// ---------------------------------------------------------------------------------------------
// The parser: blanking, test code, tokens, paths, functions.

/// `text` with every comment and the inside of every string and character literal replaced by
/// spaces; newlines are kept, so lines and braces outside literals stay where they were.
fn blank_comments_and_literals(text: &str) -> String {
    let c = text.chars().collect::<Vec<_>>();
    let mut out = c.clone();
    let ident = |i: usize| c[i].is_alphanumeric() || c[i] == '_';
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for ch in &mut out[from..to.min(c.len())] {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
    };
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        match c[i] {
            '/' if next == Some('/') => {
                let end = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len());
                blank(&mut out, i, end);
                i = end;
            }
            '/' if next == Some('*') => {
                let (mut depth, mut j) = (0, i);
                while j < c.len() {
                    if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                        depth += 1;
                        j += 2;
                    } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                        depth -= 1;
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            '"' => {
                let mut j = i + 1;
                while j < c.len() && c[j] != '"' {
                    j += if c[j] == '\\' { 2 } else { 1 };
                }
                blank(&mut out, i + 1, j);
                i = j + 1;
            }
            'r' if (i == 0
                || !ident(i - 1)
                || (matches!(c[i - 1], 'b' | 'c') && (i < 2 || !ident(i - 2))))
                && matches!(next, Some('#' | '"')) =>
            {
                let hashes = c[i + 1..].iter().take_while(|&&ch| ch == '#').count();
                let open = i + 1 + hashes;
                if c.get(open) != Some(&'"') {
                    i += 1; // a raw identifier, r#type
                    continue;
                }
                let closing =
                    |j: usize| c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#'));
                let end = (open + 1..c.len()).find(|&j| closing(j)).unwrap_or(c.len());
                blank(&mut out, open + 1, end);
                i = end + 1 + hashes;
            }
            '\'' if next == Some('\\') => {
                let end = (i + 3..c.len()).find(|&j| c[j] == '\'').unwrap_or(c.len());
                blank(&mut out, i + 1, end);
                i = end + 1;
            }
            '\'' if c.get(i + 2) == Some(&'\'') && next != Some('\'') => {
                blank(&mut out, i + 1, i + 2);
                i += 3;
            }
            _ => i += 1, // code, or a lifetime's quote
        }
    }
    out.into_iter().collect()
}

/// A word or punctuation in code, with its line (from 1) and its place in the text.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    line: usize,
    start: usize,
    end: usize,
}

/// Splits blanked code into words, `::` and single punctuation characters.
fn tokens(code: &str) -> Vec<Token> {
    let c = code.char_indices().collect::<Vec<_>>();
    let byte = |i: usize| c.get(i).map_or(code.len(), |&(b, _)| b);
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i].1;
        let start = i;
        if ch == '\n' {
            line += 1;
            i += 1;
            continue;
        } else if ch.is_whitespace() {
            i += 1;
            continue;
        } else if ch.is_alphanumeric() || ch == '_' {
            while i < c.len() && (c[i].1.is_alphanumeric() || c[i].1 == '_') {
                i += 1;
            }
        } else if ch == ':' && c.get(i + 1).is_some_and(|&(_, n)| n == ':') {
            i += 2;
        } else {
            i += 1;
        }
        out.push(Token {
            text: code[byte(start)..byte(i)].to_string(),
            line,
            start: byte(start),
            end: byte(i),
        });
    }
    out
}

fn is_word(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Blanks every item under `#[cfg(test)]` (or `#[cfg(all(test, …))]`, `#[test]`) in blanked
/// code, and every file under `#![cfg(test)]`. Returns the code and the names of the modules
/// declared as test code without a body (`#[cfg(test)] mod tests;`), whose files are test code.
fn without_test_code(code: &str) -> (String, Vec<String>) {
    let t = tokens(code);
    let mut out = code.to_string();
    let mut test_children = Vec::new();
    let blank = |out: &mut String, from: usize, to: usize| {
        let replaced = out[from..to]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect::<String>();
        out.replace_range(from..to, &replaced);
    };
    let mut i = 0;
    while i < t.len() {
        let inner = t[i].text == "#" && t.get(i + 1).is_some_and(|t| t.text == "!");
        let open = if inner { i + 2 } else { i + 1 };
        if t[i].text != "#" || t.get(open).is_none_or(|t| t.text != "[") {
            i += 1;
            continue;
        }
        let close = matching(&t, open);
        let attribute = t[open + 1..close]
            .iter()
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>();
        let is_test = attribute == ["test"]
            || (attribute.first() == Some(&"cfg")
                && attribute.contains(&"test")
                && !attribute.contains(&"not"));
        if !is_test {
            i = close + 1;
            continue;
        }
        if inner {
            return (blank_all(code), Vec::new());
        }
        let end = item_end(&t, close + 1);
        let item = t[close + 1..=end.min(t.len() - 1)]
            .iter()
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>();
        if let [.., "mod", name, ";"] = item[..] {
            test_children.push(name.to_string());
        }
        blank(&mut out, t[i].start, t[end.min(t.len() - 1)].end);
        i = end + 1;
    }
    (out, test_children)
}

fn blank_all(code: &str) -> String {
    code.chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect()
}

/// The index of the token closing the bracket opened at `open`, or the last token.
fn matching(t: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, token) in t.iter().enumerate().skip(open) {
        match token.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
    }
    t.len().saturating_sub(1)
}

/// The index of the last token of the item starting at `start`: its `;` or the `}` closing its
/// body, whichever comes first outside brackets.
fn item_end(t: &[Token], start: usize) -> usize {
    let mut j = start;
    while j < t.len() {
        match t[j].text.as_str() {
            ";" => return j,
            "{" => return matching(t, j),
            "(" | "[" => j = matching(t, j) + 1,
            _ => j += 1,
        }
    }
    t.len().saturating_sub(1)
}

/// A `crate::`, `super::` or `self::` path, as written (a `use` tree expanded) and made
/// absolute: `target` is its module path and item, from the crate root.
#[derive(Debug, Clone, PartialEq)]
struct Reference {
    line: usize,
    text: String,
    target: Vec<String>,
}

/// The paths in blanked, test-free code of the module `module`. Inline modules (`mod x { … }`)
/// are followed, so a `super::` inside one means the file's own module.
fn references(code: &str, module: &[String]) -> Vec<Reference> {
    let t = tokens(code);
    let mut out = Vec::new();
    let mut inline = Vec::<(String, usize)>::new();
    let mut depth = 0usize;
    let here = |inline: &[(String, usize)]| {
        let mut here = module.to_vec();
        here.extend(inline.iter().map(|(name, _)| name.clone()));
        here
    };
    let mut i = 0;
    while i < t.len() {
        let word = t[i].text.as_str();
        let next = t.get(i + 1).map(|t| t.text.as_str());
        match word {
            "use" => {
                let mut paths = Vec::new();
                i += 1;
                use_tree(&t, &mut i, Vec::new(), &mut paths);
                let here = here(&inline);
                for (path, line) in paths {
                    if let Some(reference) = resolved(&path, line, &here) {
                        out.push(reference);
                    }
                }
                continue;
            }
            "mod" if t.get(i + 2).is_some_and(|t| t.text == "{") => {
                inline.push((next.unwrap_or_default().to_string(), depth));
            }
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            "crate" | "super" | "self"
                if next == Some("::") && (i == 0 || t[i - 1].text != "::") =>
            {
                let mut path = vec![word.to_string()];
                let mut j = i + 1;
                while t.get(j).is_some_and(|t| t.text == "::")
                    && t.get(j + 1).is_some_and(|t| is_word(&t.text))
                {
                    path.push(t[j + 1].text.clone());
                    j += 2;
                }
                if let Some(reference) = resolved(&path, t[j - 1].line, &here(&inline)) {
                    out.push(reference);
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Expands the `use` tree starting at `*i` under `path` into `out` as (path, line of its last
/// segment); leaves `*i` after it. A `self` inside braces stays in the path, to be dropped by
/// [`resolved`]; `as` renames are dropped; a glob is its module.
fn use_tree(
    t: &[Token],
    i: &mut usize,
    mut path: Vec<String>,
    out: &mut Vec<(Vec<String>, usize)>,
) {
    let mut line = t.get(*i).map_or(0, |t| t.line);
    while let Some(token) = t.get(*i) {
        match token.text.as_str() {
            "::" => *i += 1,
            "{" => {
                *i += 1;
                while t.get(*i).is_some_and(|t| t.text != "}") {
                    let before = *i;
                    use_tree(t, i, path.clone(), out);
                    if t.get(*i).is_some_and(|t| t.text == ",") || *i == before {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            "*" => {
                *i += 1;
                out.push((path, token.line));
                return;
            }
            word if is_word(word) => {
                path.push(word.to_string());
                line = token.line;
                *i += 1;
                if t.get(*i).is_some_and(|t| t.text == "as") {
                    *i += 2;
                }
                if t.get(*i).is_none_or(|t| t.text != "::") {
                    break;
                }
            }
            _ => break,
        }
    }
    if !path.is_empty() {
        out.push((path, line));
    }
}

/// `path` (written in module `here`) as an absolute [`Reference`] when it starts with `crate`,
/// `super` or `self`; `None` for other crates, relative paths and a `super` above the root.
fn resolved(path: &[String], line: usize, here: &[String]) -> Option<Reference> {
    let mut base = match path.first()?.as_str() {
        "crate" => Vec::new(),
        "super" | "self" => here.to_vec(),
        _ => return None,
    };
    let mut rest = path;
    if rest[0] == "crate" || rest[0] == "self" {
        rest = &rest[1..];
    }
    while rest.first().is_some_and(|s| s == "super") {
        base.pop()?;
        rest = &rest[1..];
    }
    let rest = rest.iter().filter(|s| *s != "self").cloned();
    let target = base.into_iter().chain(rest).collect::<Vec<_>>();
    let text = path
        .iter()
        .enumerate()
        .filter(|(n, s)| *n == 0 || *s != "self")
        .map(|(_, s)| s.as_str())
        .collect::<Vec<_>>()
        .join("::");
    Some(Reference { line, text, target })
}

/// A function with a body: its name, the line of its `fn`, and its length in lines from that
/// line to its closing brace.
#[derive(Debug, Clone, PartialEq)]
struct Function {
    name: String,
    line: usize,
    lines: usize,
}

/// The functions with a body in blanked, test-free code (nested ones too).
fn functions(code: &str) -> Vec<Function> {
    let t = tokens(code);
    let mut out = Vec::new();
    for i in 0..t.len() {
        if t[i].text != "fn" || !t.get(i + 1).is_some_and(|t| is_word(&t.text)) {
            continue;
        }
        let mut j = i + 2;
        let body = loop {
            match t.get(j).map(|t| t.text.as_str()) {
                None | Some(";") => break None,
                Some("{") => break Some(j),
                Some("(" | "[") => j = matching(&t, j) + 1,
                Some(_) => j += 1,
            }
        };
        if let Some(open) = body {
            let close = matching(&t, open);
            out.push(Function {
                name: t[i + 1].text.clone(),
                line: t[i].line,
                lines: t[close].line - t[i].line + 1,
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The guard's own tests, on small samples.

mod parser {
    use super::*;

    fn targets(code: &str, module: &[&str]) -> Vec<String> {
        let module = module.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (code, _) = without_test_code(&blank_comments_and_literals(code));
        references(&code, &module)
            .into_iter()
            .map(|r| format!("{}:{}", r.line, r.target.join("::")))
            .collect()
    }

    #[test]
    fn a_nested_use_is_expanded_with_self_and_renames() {
        let code = "use crate::a::{self, b::{c, d as e}, f::*};\nuse std::fmt;\n";
        assert_eq!(
            targets(code, &["x"]),
            ["1:a", "1:a::b::c", "1:a::b::d", "1:a::f"]
        );
    }

    #[test]
    fn a_use_over_several_lines_gives_each_name_its_line() {
        let code = "use crate::plane::{\n    self, Issue,\n    Project,\n};\nfn f() {}\n";
        assert_eq!(
            targets(code, &["x"]),
            ["2:plane", "2:plane::Issue", "3:plane::Project"]
        );
    }

    #[test]
    fn inline_paths_count_but_strings_and_comments_do_not() {
        let code = concat!(
            "fn f() -> crate::a::T {\n",
            "    // crate::b::g()\n",
            "    /* crate::c::h() /* nested */ crate::d */\n",
            "    let s = \"crate::e::x \\\" crate::f\";\n",
            "    let c = '\"';\n",
            "    crate::g::run(s, c, 'x', '\\'')\n",
            "}\n",
        );
        assert_eq!(targets(code, &["x"]), ["1:a::T", "6:g::run"]);
    }

    #[test]
    fn raw_strings_are_blanked() {
        let code = concat!(
            "const A: &str = r\"crate::a::b\";\n",
            "const B: &str = r#\"a \" crate::c::d \"#;\n",
            "const C: &[u8] = br##\"crate::e \"# \"##;\n",
            "fn r#type<'a>(x: &'a str) -> &'a str { crate::f::g(x) }\n",
        );
        assert_eq!(targets(code, &["x"]), ["4:f::g"]);
    }

    #[test]
    fn test_code_is_skipped_and_test_modules_are_named() {
        let code = concat!(
            "use crate::a::B;\n",
            "#[cfg(test)]\n",
            "mod tests {\n",
            "    use crate::c::D;\n",
            "    fn long() { crate::e::f(); }\n",
            "}\n",
            "#[cfg(test)]\n",
            "mod more;\n",
            "#[cfg(all(test, unix))]\n",
            "fn helper() { crate::g::h() }\n",
            "#[cfg(not(test))]\n",
            "fn real() { crate::i::j() }\n",
        );
        let (blanked, children) = without_test_code(&blank_comments_and_literals(code));
        assert_eq!(children, ["more"]);
        assert_eq!(blanked.lines().count(), code.lines().count());
        assert_eq!(targets(code, &["x"]), ["1:a::B", "12:i::j"]);
        let names = functions(&blanked).into_iter().map(|f| f.name);
        assert_eq!(names.collect::<Vec<_>>(), ["real"]);
    }

    #[test]
    fn super_and_self_are_resolved_from_the_file_and_its_inline_modules() {
        let code = concat!(
            "use super::{FeedId, file::head};\n",
            "use self::inner::X;\n",
            "pub mod inner {\n",
            "    pub fn f() { super::g() }\n",
            "}\n",
            "fn g() { super::super::h() }\n",
        );
        assert_eq!(
            targets(code, &["feed", "directory"]),
            [
                "1:feed::FeedId",
                "1:feed::file::head",
                "2:feed::directory::inner::X",
                "4:feed::directory::g",
                "6:h"
            ]
        );
        // In `feed/mod.rs`, `super` is the crate root; above it there is nothing.
        assert_eq!(
            targets("use super::cli;\nfn f() { super::super::x() }", &["feed"]),
            ["1:cli"]
        );
    }

    #[test]
    #[should_panic(expected = "the guard misreads src/a.rs: 1 `{` left open at its end")]
    fn a_file_the_guard_misreads_fails_it() {
        sample(&[("a.rs", "fn f() { let s = r#\"}\"; }\nfn g() {\n")]);
    }

    #[test]
    fn files_map_to_modules() {
        let module = |p: &str| module_of(Path::new(p)).join("::");
        assert_eq!(module("feed/mod.rs"), "feed");
        assert_eq!(module("feed/file.rs"), "feed::file");
        assert_eq!(module("plane.rs"), "plane");
        assert_eq!(module("lib.rs"), "");
        assert_eq!(module("main.rs"), "");
    }

    #[test]
    fn functions_are_measured_from_fn_to_closing_brace() {
        let code = concat!(
            "fn one() {}\n",
            "pub(crate) fn two<T: Fn(u8) -> u8>(t: T) -> [u8; 2]\n",
            "where T: Copy\n",
            "{\n",
            "    let s = \"}\";\n",
            "    let c = '}';\n",
            "    // }\n",
            "    [t(1), 2]\n",
            "}\n",
            "trait X { fn declared(&self); fn given(&self) { } }\n",
            "type F = fn(u8) -> u8;\n",
        );
        let found = functions(&blank_comments_and_literals(code))
            .into_iter()
            .map(|f| format!("{}:{}:{}", f.name, f.line, f.lines))
            .collect::<Vec<_>>();
        assert_eq!(found, ["one:1:1", "two:2:8", "given:10:1"]);
    }

    fn sample(files: &[(&str, &str)]) -> Layout {
        let sources = files
            .iter()
            .map(|(path, text)| (PathBuf::from(path), text.to_string()))
            .collect::<Vec<_>>();
        Layout::from_sources(&sources)
    }

    #[test]
    fn loops_are_found_among_files_and_rooms_with_their_imports() {
        let layout = sample(&[
            ("lib.rs", "pub mod a; pub mod b; pub mod c;"),
            ("a/mod.rs", "pub mod x;\nuse crate::b::Thing;\n"),
            ("a/x.rs", "use super::Top;\n"),
            ("b.rs", "fn f() {\n    crate::a::x::g()\n}\n"),
            ("c.rs", "use crate::a::Top;\n#[cfg(test)]\nmod tests;\n"),
            ("c/tests.rs", "use crate::c::*;\n"),
        ]);
        let names = layout.files.iter().map(|f| f.name.as_str());
        assert_eq!(names.collect::<Vec<_>>(), ["a/mod", "a/x", "b", "c"]);
        let files = layout.file_loops();
        assert!(files.contains("loop 1 (3 files): a/mod, a/x, b"), "{files}");
        assert!(files.contains("a/mod → b → a/x → a/mod"), "{files}");
        assert!(files.contains("src/b.rs:2  crate::a::x::g"), "{files}");
        assert!(files.contains("a/mod → b (1 place)"), "{files}");
        let rooms = layout.room_loops();
        assert!(rooms.contains("loop 1 (2 rooms): a, b"), "{rooms}");
        assert!(rooms.contains("src/a/mod.rs:2  crate::b::Thing"), "{rooms}");
        assert!(!rooms.contains("src/c.rs"), "{rooms}");
    }

    #[test]
    fn no_loop_gives_no_text() {
        let layout = sample(&[("a.rs", "use crate::b::X;\n"), ("b.rs", "pub struct X;\n")]);
        assert_eq!(layout.file_loops(), "");
        assert_eq!(layout.room_loops(), "");
    }

    #[test]
    fn long_functions_are_listed() {
        let body = |n: usize| format!("fn f{n}() {{\n{}}}\n", "    x();\n".repeat(n - 2));
        let text = [101, 102, 103, 104, 131].map(body).concat();
        let layout = sample(&[("a.rs", &text)]);
        let problems = layout.function_problems();
        assert!(
            problems.starts_with("1 function over 130 lines (none may be):\n  src/a.rs:"),
            "{problems}"
        );
        assert!(
            problems.contains("src/a.rs:411 f131 131 lines\n"),
            "{problems}"
        );
        let besides = "5 functions over 100 lines (at most 3 may be); besides those above:\n";
        assert!(problems.contains(besides), "{problems}");
        assert_eq!(problems.matches(" f131 ").count(), 1, "{problems}");
        assert_eq!(problems.matches(" f101 ").count(), 1, "{problems}");
        let short = sample(&[("a.rs", &[101, 130, 20].map(body).concat())]);
        assert_eq!(short.function_problems(), "");
    }

    #[test]
    fn the_names_one_line_imports_are_merged() {
        assert_eq!(merged(&["crate::a::B"]), "crate::a::B");
        assert_eq!(merged(&["crate::a::B", "crate::a::C"]), "crate::a::{B, C}");
        assert_eq!(merged(&["crate::a", "crate::a::B"]), "crate::a::{self, B}");
        assert_eq!(merged(&["super::x::Y", "super::Z"]), "super::{x::Y, Z}");
    }
}
