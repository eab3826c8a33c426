//! Go 1.19's `text/template/parse` parser: the node tree, the three-token lookahead that
//! decides which line a parse error names, and Go's parse error texts. Node positions and
//! their `String()` forms are kept because execution errors print both.

use super::gostr::{self, UnquoteError};
use super::lex::{Item, ItemType, Lexer};
use std::collections::BTreeMap;

/// text/template's builtins (Go 1.19), which every dialect has.
pub(super) const BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf", "println",
    "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

/// Prometheus 2.42's `FuncMap`. The parser rejects an identifier that is neither this nor a
/// builtin, as Go's does.
pub(super) const PROMETHEUS_FUNCTIONS: &[&str] = &[
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "stripPort",
    "stripDomain",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "pathPrefix",
    "externalURL",
    "parseDuration",
];

/// Deepest nesting of control structures and parentheses the parser accepts (Go has no such
/// limit for control structures; this keeps a hostile template from exhausting the stack).
const MAX_DEPTH: usize = 500;

/// A node that execution errors can point at: its byte position in the full template text
/// and its Go `String()` form.
pub(super) trait GoNode {
    fn pos(&self) -> usize;
    fn write(&self, out: &mut String);
    fn go_string(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }
}

#[derive(Debug)]
pub(super) struct ListNode {
    pub pos: usize,
    pub nodes: Vec<Node>,
}

#[derive(Debug)]
pub(super) enum Node {
    Text { pos: usize, text: String },
    Action { pos: usize, pipe: Pipe },
    If(Branch),
    Range(Branch),
    With(Branch),
    Template { pos: usize, name: String, pipe: Option<Pipe> },
    Break { pos: usize },
    Continue { pos: usize },
}

#[derive(Debug)]
pub(super) struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: ListNode,
    pub else_list: Option<ListNode>,
}

#[derive(Debug)]
pub(super) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<VarNode>,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub(super) struct VarNode {
    pub pos: usize,
    pub ident: Vec<String>,
}

#[derive(Debug)]
pub(super) struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug)]
pub(super) struct NumberNode {
    pub pos: usize,
    pub is_int: bool,
    pub is_uint: bool,
    pub is_float: bool,
    pub int64: i64,
    pub float64: f64,
    pub text: String,
}

#[derive(Debug)]
pub(super) enum Arg {
    Field { pos: usize, ident: Vec<String> },
    Chain { pos: usize, node: Box<Arg>, field: Vec<String> },
    Identifier { pos: usize, name: String },
    Variable(VarNode),
    Dot { pos: usize },
    Nil { pos: usize },
    Bool { pos: usize, val: bool },
    Number(Box<NumberNode>),
    String { pos: usize, quoted: String, text: String },
    Pipe(Box<Pipe>),
}

impl GoNode for ListNode {
    fn pos(&self) -> usize {
        self.pos
    }
    fn write(&self, out: &mut String) {
        for n in &self.nodes {
            n.write(out);
        }
    }
}

impl GoNode for Node {
    fn pos(&self) -> usize {
        match self {
            Node::Text { pos, .. }
            | Node::Action { pos, .. }
            | Node::Template { pos, .. }
            | Node::Break { pos }
            | Node::Continue { pos } => *pos,
            Node::If(b) | Node::Range(b) | Node::With(b) => b.pos,
        }
    }
    fn write(&self, out: &mut String) {
        match self {
            Node::Text { text, .. } => out.push_str(text),
            Node::Action { pipe, .. } => {
                out.push_str("{{");
                pipe.write(out);
                out.push_str("}}");
            }
            Node::If(b) => b.write_named("if", out),
            Node::Range(b) => b.write_named("range", out),
            Node::With(b) => b.write_named("with", out),
            Node::Template { name, pipe, .. } => {
                out.push_str("{{template ");
                out.push_str(&gostr::quote(name));
                if let Some(p) = pipe {
                    out.push(' ');
                    p.write(out);
                }
                out.push_str("}}");
            }
            Node::Break { .. } => out.push_str("{{break}}"),
            Node::Continue { .. } => out.push_str("{{continue}}"),
        }
    }
}

impl Branch {
    fn write_named(&self, name: &str, out: &mut String) {
        out.push_str("{{");
        out.push_str(name);
        out.push(' ');
        self.pipe.write(out);
        out.push_str("}}");
        self.list.write(out);
        if let Some(e) = &self.else_list {
            out.push_str("{{else}}");
            e.write(out);
        }
        out.push_str("{{end}}");
    }
}

impl GoNode for Pipe {
    fn pos(&self) -> usize {
        self.pos
    }
    fn write(&self, out: &mut String) {
        if !self.decl.is_empty() {
            for (i, v) in self.decl.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                v.write(out);
            }
            out.push_str(if self.is_assign { " = " } else { " := " });
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                out.push_str(" | ");
            }
            c.write(out);
        }
    }
}

impl GoNode for VarNode {
    fn pos(&self) -> usize {
        self.pos
    }
    fn write(&self, out: &mut String) {
        out.push_str(&self.ident.join("."));
    }
}

impl GoNode for Command {
    fn pos(&self) -> usize {
        self.pos
    }
    fn write(&self, out: &mut String) {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            if let Arg::Pipe(p) = a {
                out.push('(');
                p.write(out);
                out.push(')');
            } else {
                a.write(out);
            }
        }
    }
}

impl GoNode for Arg {
    fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Bool { pos, .. }
            | Arg::String { pos, .. } => *pos,
            Arg::Variable(v) => v.pos,
            Arg::Number(n) => n.pos,
            Arg::Pipe(p) => p.pos,
        }
    }
    fn write(&self, out: &mut String) {
        match self {
            Arg::Field { ident, .. } => {
                for id in ident {
                    out.push('.');
                    out.push_str(id);
                }
            }
            Arg::Chain { node, field, .. } => {
                if let Arg::Pipe(p) = node.as_ref() {
                    out.push('(');
                    p.write(out);
                    out.push(')');
                } else {
                    node.write(out);
                }
                for f in field {
                    out.push('.');
                    out.push_str(f);
                }
            }
            Arg::Identifier { name, .. } => out.push_str(name),
            Arg::Variable(v) => v.write(out),
            Arg::Dot { .. } => out.push('.'),
            Arg::Nil { .. } => out.push_str("nil"),
            Arg::Bool { val, .. } => out.push_str(if *val { "true" } else { "false" }),
            Arg::Number(n) => out.push_str(&n.text),
            Arg::String { quoted, .. } => out.push_str(quoted),
            Arg::Pipe(p) => p.write(out),
        }
    }
}

/// Alertmanager 0.25's `DefaultFuncs`.
pub(super) const ALERTMANAGER_FUNCTIONS: &[&str] =
    &["toUpper", "toLower", "title", "join", "match", "safeHtml", "reReplaceAll", "stringSlice"];

/// Whose function map a template is parsed and run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Prometheus 2.42's alert templates.
    Prometheus,
    /// Alertmanager 0.25's notification templates.
    Alertmanager,
}

impl Dialect {
    /// Whether `name` is a function templates of this dialect may call.
    pub(super) fn has_function(self, name: &str) -> bool {
        BUILTINS.contains(&name)
            || match self {
                Dialect::Prometheus => PROMETHEUS_FUNCTIONS.contains(&name),
                Dialect::Alertmanager => ALERTMANAGER_FUNCTIONS.contains(&name),
            }
    }
}

/// All templates one parse defines: the main one under its name, plus `define` and `block`.
pub(super) type TreeSet = BTreeMap<String, ListNode>;

/// What `textOrAction` returns: a node, or an `{{end}}`/`{{else}}` that ends a list.
enum Parsed {
    Node(Node),
    End,
    Else { pos: usize },
}

impl Parsed {
    fn describe(&self) -> &'static str {
        match self {
            Parsed::End => "{{end}}",
            Parsed::Else { .. } => "{{else}}",
            Parsed::Node(_) => "node",
        }
    }
}

type PResult<T> = Result<T, String>;

struct Shared<'a> {
    lex: Lexer<'a>,
    trees: TreeSet,
    parse_name: String,
    depth: usize,
    dialect: Dialect,
}

struct Tree<'s, 'a> {
    sh: &'s mut Shared<'a>,
    name: String,
    token: [Item; 3],
    peek_count: usize,
    vars: Vec<String>,
    action_line: usize,
    range_depth: usize,
}

fn blank() -> Item {
    Item { typ: ItemType::Eof, pos: 0, val: String::new(), line: 0 }
}

/// Parses `text` as template `name`: every template it defines, or Go's parse error text.
pub(super) fn parse(name: &str, text: &str, dialect: Dialect) -> Result<TreeSet, String> {
    let mut sh = Shared {
        lex: Lexer::new(text),
        trees: TreeSet::new(),
        parse_name: name.to_string(),
        depth: 0,
        dialect,
    };
    let mut t = Tree::new(&mut sh, name);
    let root = t.parse()?;
    t.add(root)?;
    Ok(sh.trees)
}

pub(super) fn is_empty_tree(list: &ListNode) -> bool {
    list.nodes.iter().all(|n| match n {
        Node::Text { text, .. } => text.trim().is_empty(),
        _ => false,
    })
}

impl<'s, 'a> Tree<'s, 'a> {
    fn new(sh: &'s mut Shared<'a>, name: &str) -> Self {
        Tree {
            sh,
            name: name.to_string(),
            token: [blank(), blank(), blank()],
            peek_count: 0,
            vars: vec!["$".to_string()],
            action_line: 0,
            range_depth: 0,
        }
    }

    fn next(&mut self) -> Item {
        if self.peek_count > 0 {
            self.peek_count -= 1;
        } else {
            self.token[0] = self.sh.lex.next_item();
        }
        self.token[self.peek_count].clone()
    }

    fn backup(&mut self) {
        self.peek_count += 1;
    }

    fn backup2(&mut self, t1: Item) {
        self.token[1] = t1;
        self.peek_count = 2;
    }

    fn backup3(&mut self, t2: Item, t1: Item) {
        self.token[1] = t1;
        self.token[2] = t2;
        self.peek_count = 3;
    }

    fn peek(&mut self) -> Item {
        if self.peek_count > 0 {
            return self.token[self.peek_count - 1].clone();
        }
        self.peek_count = 1;
        self.token[0] = self.sh.lex.next_item();
        self.token[0].clone()
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let t = self.next();
            if t.typ != ItemType::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn errorf<T>(&self, msg: impl std::fmt::Display) -> PResult<T> {
        Err(format!("template: {}:{}: {}", self.sh.parse_name, self.token[0].line, msg))
    }

    fn expect(&mut self, expected: ItemType, context: &str) -> PResult<Item> {
        let t = self.next_non_space();
        if t.typ != expected {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn unexpected<T>(&self, token: &Item, context: &str) -> PResult<T> {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(" in action started at {}:{}", self.sh.parse_name, self.action_line);
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.errorf(format!("{token}{extra}"));
        }
        self.errorf(format!("unexpected {token} in {context}"))
    }

    fn enter(&mut self) -> PResult<()> {
        self.sh.depth += 1;
        if self.sh.depth > MAX_DEPTH {
            return self.errorf("template nesting too deep");
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.sh.depth -= 1;
    }

    fn add(&mut self, root: ListNode) -> PResult<()> {
        match self.sh.trees.get(&self.name) {
            Some(existing) if !is_empty_tree(existing) => {
                if !is_empty_tree(&root) {
                    return self.errorf(format!(
                        "template: multiple definition of template {}",
                        gostr::quote(&self.name)
                    ));
                }
            }
            _ => {
                self.sh.trees.insert(self.name.clone(), root);
            }
        }
        Ok(())
    }

    fn parse(&mut self) -> PResult<ListNode> {
        let mut root = ListNode { pos: self.peek().pos, nodes: Vec::new() };
        while self.peek().typ != ItemType::Eof {
            if self.peek().typ == ItemType::LeftDelim {
                let delim = self.next();
                if self.next_non_space().typ == ItemType::Define {
                    let mut def = Tree::new(self.sh, "definition");
                    def.parse_definition()?;
                    continue;
                }
                self.backup2(delim);
            }
            match self.text_or_action()? {
                Parsed::Node(n) => root.nodes.push(n),
                other => return self.errorf(format!("unexpected {}", other.describe())),
            }
        }
        Ok(root)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let name = self.next_non_space();
        if name.typ != ItemType::String && name.typ != ItemType::RawString {
            return self.unexpected(&name, CONTEXT);
        }
        self.name = self.unquote(&name.val)?;
        self.expect(ItemType::RightDelim, CONTEXT)?;
        let (root, end) = self.item_list()?;
        if !matches!(end, Parsed::End) {
            return self.errorf(format!("unexpected {} in {CONTEXT}", end.describe()));
        }
        self.add(root)
    }

    fn unquote(&self, quoted: &str) -> PResult<String> {
        match gostr::unquote(quoted) {
            Ok(s) => Ok(s),
            Err(UnquoteError::Syntax) => self.errorf("invalid syntax"),
            Err(UnquoteError::NotUtf8) => {
                self.errorf(format!("unsupported: string constant {quoted} is not valid UTF-8"))
            }
        }
    }

    fn item_list(&mut self) -> PResult<(ListNode, Parsed)> {
        super::deep(|| self.item_list_here())
    }

    fn item_list_here(&mut self) -> PResult<(ListNode, Parsed)> {
        self.enter()?;
        let mut list = ListNode { pos: self.peek_non_space().pos, nodes: Vec::new() };
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                Parsed::Node(n) => list.nodes.push(n),
                end => {
                    self.leave();
                    return Ok((list, end));
                }
            }
        }
        self.errorf("unexpected EOF")
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Text => Ok(Parsed::Node(Node::Text { pos: token.pos, text: token.val })),
            ItemType::LeftDelim => {
                self.action_line = token.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => self.unexpected(&token, "input"),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Block => return self.block_control().map(Parsed::Node),
            ItemType::Break | ItemType::Continue => {
                let is_break = token.typ == ItemType::Break;
                let what = if is_break { "{{break}}" } else { "{{continue}}" };
                let t = self.next_non_space();
                if t.typ != ItemType::RightDelim {
                    return self.unexpected(&t, what);
                }
                if self.range_depth == 0 {
                    return self.errorf(format!("{what} outside {{{{range}}}}"));
                }
                let pos = token.pos;
                return Ok(Parsed::Node(if is_break { Node::Break { pos } } else { Node::Continue { pos } }));
            }
            ItemType::Else => {
                let peek = self.peek_non_space();
                if peek.typ == ItemType::If {
                    return Ok(Parsed::Else { pos: peek.pos });
                }
                let t = self.expect(ItemType::RightDelim, "else")?;
                return Ok(Parsed::Else { pos: t.pos });
            }
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Parsed::End);
            }
            ItemType::If => return self.if_control().map(Parsed::Node),
            ItemType::Range => {
                let (pos, pipe, list, else_list) = self.parse_control("range")?;
                return Ok(Parsed::Node(Node::Range(Branch { pos, pipe, list, else_list })));
            }
            ItemType::With => {
                let (pos, pipe, list, else_list) = self.parse_control("with")?;
                return Ok(Parsed::Node(Node::With(Branch { pos, pipe, list, else_list })));
            }
            ItemType::Template => return self.template_control().map(Parsed::Node),
            _ => {}
        }
        self.backup();
        let token = self.peek();
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Parsed::Node(Node::Action { pos: token.pos, pipe }))
    }

    fn if_control(&mut self) -> PResult<Node> {
        let (pos, pipe, list, else_list) = self.parse_control("if")?;
        Ok(Node::If(Branch { pos, pipe, list, else_list }))
    }

    fn parse_control(&mut self, context: &str) -> PResult<(usize, Pipe, ListNode, Option<ListNode>)> {
        let vars = self.vars.len();
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        if let Parsed::Else { pos } = next {
            if context == "if" && self.peek().typ == ItemType::If {
                self.next();
                let nested = self.if_control()?;
                else_list = Some(ListNode { pos, nodes: vec![nested] });
            } else {
                let (list, next) = self.item_list()?;
                if !matches!(next, Parsed::End) {
                    return self.errorf(format!("expected end; found {}", next.describe()));
                }
                else_list = Some(list);
            }
        }
        self.vars.truncate(vars);
        Ok((pipe.pos, pipe, list, else_list))
    }

    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, ItemType::RightDelim)?;
        let line = self.token[0].line;
        let mut block = Tree::new(self.sh, &name);
        let (root, end) = block.item_list()?;
        if !matches!(end, Parsed::End) {
            return Err(format!(
                "template: {}:{line}: unexpected {} in {CONTEXT}",
                block.sh.parse_name,
                end.describe()
            ));
        }
        block.add(root)?;
        Ok(Node::Template { pos: token.pos, name, pipe: Some(pipe) })
    }

    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let mut pipe = None;
        if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(CONTEXT, ItemType::RightDelim)?);
        }
        Ok(Node::Template { pos: token.pos, name, pipe })
    }

    fn template_name(&self, token: &Item, context: &str) -> PResult<String> {
        match token.typ {
            ItemType::String | ItemType::RawString => self.unquote(&token.val),
            _ => self.unexpected(token, context),
        }
    }

    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<Pipe> {
        let token = self.peek_non_space();
        let mut pipe = Pipe { pos: token.pos, is_assign: false, decl: Vec::new(), cmds: Vec::new() };
        'decls: loop {
            let v = self.peek_non_space();
            if v.typ == ItemType::Variable {
                self.next();
                let after = self.peek();
                let next = self.peek_non_space();
                if next.typ == ItemType::Assign || next.typ == ItemType::Declare {
                    pipe.is_assign = next.typ == ItemType::Assign;
                    self.next_non_space();
                    pipe.decl.push(var_node(v.pos, &v.val));
                    self.vars.push(v.val);
                } else if next.typ == ItemType::Char && next.val == "," {
                    self.next_non_space();
                    pipe.decl.push(var_node(v.pos, &v.val));
                    self.vars.push(v.val);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().typ {
                            ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => {
                                continue 'decls;
                            }
                            _ => return self.errorf("range can only initialize variables"),
                        }
                    }
                    return self.errorf(format!("too many declarations in {context}"));
                } else if after.typ == ItemType::Space {
                    self.backup3(v, after);
                } else {
                    self.backup2(v);
                }
            }
            break;
        }
        loop {
            let token = self.next_non_space();
            match token.typ {
                t if t == end => {
                    self.check_pipeline(&pipe, context)?;
                    return Ok(pipe);
                }
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(&token, context),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return self.errorf(format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(
                    Arg::Bool { .. }
                        | Arg::Dot { .. }
                        | Arg::Nil { .. }
                        | Arg::Number(_)
                        | Arg::String { .. }
                )
            ) {
                return self.errorf(format!("non executable command in pipeline stage {}", i + 1));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Command> {
        let mut cmd = Command { pos: self.peek_non_space().pos, args: Vec::new() };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let token = self.next();
            match token.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return self.unexpected(&token, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.errorf("empty command");
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else { return Ok(None) };
        if self.peek().typ != ItemType::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().typ == ItemType::Field {
            let f = self.next();
            fields.push(f.val[1..].to_string());
        }
        Ok(Some(match node {
            Arg::Field { mut ident, .. } => {
                ident.extend(fields);
                Arg::Field { pos, ident }
            }
            Arg::Variable(mut v) => {
                v.ident.extend(fields);
                v.pos = pos;
                Arg::Variable(v)
            }
            Arg::Bool { .. } | Arg::String { .. } | Arg::Number(_) | Arg::Nil { .. } | Arg::Dot { .. } => {
                return self.errorf(format!("unexpected . after term {}", gostr::quote(&node.go_string())));
            }
            other => Arg::Chain { pos, node: Box::new(other), field: fields },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        Ok(Some(match token.typ {
            ItemType::Identifier => {
                if !self.sh.dialect.has_function(&token.val) {
                    return self.errorf(format!("function {} not defined", gostr::quote(&token.val)));
                }
                Arg::Identifier { pos, name: token.val }
            }
            ItemType::Dot => Arg::Dot { pos },
            ItemType::Nil => Arg::Nil { pos },
            ItemType::Variable => {
                let v = var_node(pos, &token.val);
                if !self.vars.contains(&v.ident[0]) {
                    return self.errorf(format!("undefined variable {}", gostr::quote(&v.ident[0])));
                }
                Arg::Variable(v)
            }
            ItemType::Field => {
                Arg::Field { pos, ident: token.val[1..].split('.').map(str::to_string).collect() }
            }
            ItemType::Bool => Arg::Bool { pos, val: token.val == "true" },
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => {
                Arg::Number(Box::new(self.number(pos, &token.val, token.typ)?))
            }
            ItemType::LeftParen => {
                self.enter()?;
                let pipe = super::deep(|| self.pipeline("parenthesized pipeline", ItemType::RightParen))?;
                self.leave();
                Arg::Pipe(Box::new(pipe))
            }
            ItemType::String | ItemType::RawString => {
                let text = self.unquote(&token.val)?;
                Arg::String { pos, quoted: token.val, text }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }

    fn number(&self, pos: usize, text: &str, typ: ItemType) -> PResult<NumberNode> {
        let mut n = NumberNode {
            pos,
            is_int: false,
            is_uint: false,
            is_float: false,
            int64: 0,
            float64: 0.0,
            text: text.into(),
        };
        if typ == ItemType::CharConstant {
            return match gostr::unquote_char_constant(text) {
                Ok(r) => {
                    n.is_int = true;
                    n.is_uint = true;
                    n.is_float = true;
                    n.int64 = i64::from(r);
                    n.float64 = f64::from(r);
                    Ok(n)
                }
                Err(None) => self.errorf("invalid syntax"),
                Err(Some(())) => self.errorf(format!("malformed character constant: {text}")),
            };
        }
        let imaginary = text.ends_with('i') && gostr::parse_float(&text[..text.len() - 1]).is_ok();
        if typ == ItemType::Complex || imaginary {
            return self.errorf(format!("unsupported: complex number constant {text}"));
        }
        let u = gostr::parse_uint0(text);
        if u.is_some() {
            n.is_uint = true;
        }
        if let Some(i) = gostr::parse_int0(text) {
            n.is_int = true;
            n.int64 = i;
            if i == 0 {
                n.is_uint = true;
            }
        }
        if n.is_int {
            n.is_float = true;
            n.float64 = n.int64 as f64;
        } else if let Some(u) = u.filter(|_| n.is_uint) {
            n.is_float = true;
            n.float64 = u as f64;
        } else if let Ok(f) = gostr::parse_float(text) {
            if !text.contains(['.', 'e', 'E', 'p', 'P']) {
                return self.errorf(format!("integer overflow: {}", gostr::quote(text)));
            }
            n.is_float = true;
            n.float64 = f;
            let i = gostr::f64_to_i64(f);
            if i as f64 == f {
                n.is_int = true;
                n.int64 = i;
            }
            let u = if (0.0..1.844_674_407_370_955_2e19).contains(&f) { f as u64 } else { 1 << 63 };
            if u as f64 == f {
                n.is_uint = true;
            }
        }
        if !n.is_int && !n.is_uint && !n.is_float {
            return self.errorf(format!("illegal number syntax: {}", gostr::quote(text)));
        }
        Ok(n)
    }
}

fn var_node(pos: usize, name: &str) -> VarNode {
    VarNode { pos, ident: name.split('.').map(str::to_string).collect() }
}
