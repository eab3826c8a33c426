//! Go 1.19's `text/template` execution (`exec.go`) over the parse tree, with
//! `missingkey=zero`: field and method resolution, argument checking against each function's
//! parameter types, variables, `if`/`with`/`range`/`break`/`continue`, template calls, and
//! execution errors located and worded as Go words them (`template: NAME:LINE:COL: executing
//! "NAME" at <NODE>: …`), where the node is the one Go last visited.

use super::funcs::{self, Env, Sig};
use super::gofmt;
use super::gostr;
use super::parse::{Arg, Branch, Command, GoNode, ListNode, Node, NumberNode, Pipe, TreeSet, VarNode};
use super::value::{Param, Value};
use std::rc::Rc;

/// Nested `{{template}}` calls allowed. Go allows 100000; each level here costs native stack.
const MAX_EXEC_DEPTH: usize = 1000;

pub(super) type EResult<T> = Result<T, String>;

enum Flow {
    Normal,
    Break,
    Continue,
}

/// One parsed text: the templates it defines, the text (positions in errors index it) and the
/// name it was parsed under.
#[derive(Clone, Copy)]
pub(super) struct Source<'t> {
    pub trees: &'t TreeSet,
    pub text: &'t str,
    pub name: &'t str,
}

pub(super) struct State<'t, 'e> {
    sources: &'t [Source<'t>],
    text: &'t str,
    parse_name: &'t str,
    tmpl_name: &'t str,
    node: Option<&'t dyn GoNode>,
    vars: Vec<(String, Value)>,
    depth: usize,
    pub env: &'e Env<'e>,
    out: String,
    next_id: usize,
}

/// The definition of template `name`: the first source that defines it with a body, else the
/// first that defines it (Go's `associate` keeps a body over a later empty redefinition).
fn find<'t>(sources: &'t [Source<'t>], name: &str) -> Option<(&'t ListNode, Source<'t>)> {
    let mut empty = None;
    for src in sources {
        if let Some(tree) = src.trees.get(name) {
            if !super::parse::is_empty_tree(tree) {
                return Some((tree, *src));
            }
            empty.get_or_insert((tree, *src));
        }
    }
    empty
}

/// Executes template `name` with `dot` as data. Templates are looked up in `sources` in order.
pub(super) fn execute<'t>(sources: &'t [Source<'t>], name: &str, dot: Value, env: &Env) -> EResult<String> {
    let Some((root, src)) = find(sources, name) else {
        return Err(format!("template: {name}: {} is an incomplete or empty template", gostr::quote(name)));
    };
    let mut s = State {
        sources,
        text: src.text,
        parse_name: src.name,
        tmpl_name: name,
        node: None,
        vars: vec![("$".to_string(), dot.clone())],
        depth: 0,
        env,
        out: String::new(),
        next_id: 0,
    };
    s.walk_list(&dot, root)?;
    Ok(s.out)
}

impl<'t, 'e> State<'t, 'e> {
    fn at(&mut self, node: &'t dyn GoNode) {
        self.node = Some(node);
    }

    /// Go's `state.errorf`: the message with the current template and node.
    pub fn err(&self, msg: impl std::fmt::Display) -> String {
        let name = gostr::quote(self.tmpl_name);
        match self.node {
            None => format!("template: {}: {msg}", self.tmpl_name),
            Some(n) => {
                let pos = n.pos().min(self.text.len());
                // A node of another source's tree cannot land inside a character and panic.
                let before = self.text.get(..pos).unwrap_or(self.text);
                let line = 1 + before.matches('\n').count();
                let col = match before.rfind('\n') {
                    Some(i) => pos - (i + 1),
                    None => pos,
                };
                format!(
                    "template: {}:{line}:{col}: executing {name} at <{}>: {msg}",
                    self.parse_name,
                    n.go_string()
                )
            }
        }
    }

    fn fail<T>(&self, msg: impl std::fmt::Display) -> EResult<T> {
        Err(self.err(msg))
    }

    pub fn unsupported<T>(&self, what: impl std::fmt::Display) -> EResult<T> {
        self.fail(format!("unsupported by obsd's template engine: {what}"))
    }

    pub fn new_id(&mut self) -> usize {
        self.next_id += 1;
        self.next_id
    }

    fn mark(&self) -> usize {
        self.vars.len()
    }

    fn pop(&mut self, mark: usize) {
        self.vars.truncate(mark);
    }

    fn set_var(&mut self, name: &str, v: Value) -> EResult<()> {
        for (n, val) in self.vars.iter_mut().rev() {
            if n == name {
                *val = v;
                return Ok(());
            }
        }
        self.fail(format!("undefined variable: {name}"))
    }

    fn set_top_var(&mut self, n: usize, v: Value) -> EResult<()> {
        let len = self.vars.len();
        match len.checked_sub(n).and_then(|i| self.vars.get_mut(i)) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => self.fail("internal error: variable stack underflow"),
        }
    }

    fn var_value(&self, name: &str) -> EResult<Value> {
        for (n, val) in self.vars.iter().rev() {
            if n == name {
                return Ok(val.clone());
            }
        }
        self.fail(format!("undefined variable: {name}"))
    }

    fn walk_list(&mut self, dot: &Value, list: &'t ListNode) -> EResult<Flow> {
        super::deep(|| self.walk_list_here(dot, list))
    }

    fn walk_list_here(&mut self, dot: &Value, list: &'t ListNode) -> EResult<Flow> {
        self.at(list);
        for n in &list.nodes {
            match self.walk(dot, n)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Value, node: &'t Node) -> EResult<Flow> {
        self.at(node);
        match node {
            Node::Action { pipe, .. } => {
                let val = self.eval_pipeline(dot, Some(pipe))?;
                if pipe.decl.is_empty() {
                    self.print_value(node, &val)?;
                }
            }
            Node::If(b) => return self.walk_if_or_with(false, dot, b),
            Node::With(b) => return self.walk_if_or_with(true, dot, b),
            Node::Range(b) => return self.walk_range(dot, node, b),
            Node::Template { name, pipe, .. } => self.walk_template(dot, node, name, pipe.as_ref())?,
            Node::Text { text, .. } => self.out.push_str(text),
            Node::Break { .. } => return Ok(Flow::Break),
            Node::Continue { .. } => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, with: bool, dot: &Value, b: &'t Branch) -> EResult<Flow> {
        let mark = self.mark();
        let val = self.eval_pipeline(dot, Some(&b.pipe))?;
        let flow = if val.truth() {
            if with { self.walk_list(&val, &b.list)? } else { self.walk_list(dot, &b.list)? }
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)?
        } else {
            Flow::Normal
        };
        self.pop(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Value, node: &'t Node, r: &'t Branch) -> EResult<Flow> {
        self.at(node);
        let outer = self.mark();
        let val = self.eval_pipeline(dot, Some(&r.pipe))?;
        let val = match val {
            Value::NilIface => Value::Invalid,
            v => v,
        };
        let mark = self.mark();
        let items: Vec<(Value, Value)> = match &val {
            Value::Query(q) => q
                .items()
                .into_iter()
                .enumerate()
                .map(|(i, s)| (Value::Int(i as i64), Value::Sample(Some(s))))
                .collect(),
            Value::StrMap(m) | Value::Kv(m) => {
                m.iter().map(|(k, v)| (Value::str(k), Value::str(v))).collect()
            }
            Value::Alerts(alerts) => alerts
                .iter()
                .enumerate()
                .map(|(i, a)| (Value::Int(i as i64), Value::AmAlert(a.clone())))
                .collect(),
            Value::Pairs(pairs) => pairs
                .iter()
                .enumerate()
                .map(|(i, p)| (Value::Int(i as i64), Value::Pair(Rc::new(p.clone()))))
                .collect(),
            Value::StrSlice(items) => {
                items.iter().enumerate().map(|(i, v)| (Value::Int(i as i64), Value::str(v))).collect()
            }
            Value::IfaceMap(m) => m.iter().map(|(k, v)| (Value::str(k), v.clone())).collect(),
            Value::Invalid => Vec::new(),
            Value::Sample(None) => return self.fail("range can't iterate over <nil>"),
            other => {
                let shown = gofmt::print_action(other).or_else(|u| self.unsupported(u))?;
                return self.fail(format!("range can't iterate over {shown}"));
            }
        };
        if items.is_empty() {
            let flow = match &r.else_list {
                Some(e) => self.walk_list(dot, e)?,
                None => Flow::Normal,
            };
            self.pop(outer);
            return Ok(flow);
        }
        for (index, elem) in items {
            if !r.pipe.decl.is_empty() {
                self.set_top_var(1, elem.clone())?;
            }
            if r.pipe.decl.len() > 1 {
                self.set_top_var(2, index)?;
            }
            let elem = match elem {
                Value::NilIface => Value::Invalid,
                v => v,
            };
            let flow = self.walk_list(&elem, &r.list)?;
            self.pop(mark);
            if let Flow::Break = flow {
                break;
            }
        }
        self.pop(outer);
        Ok(Flow::Normal)
    }

    fn walk_template(
        &mut self,
        dot: &Value,
        node: &'t Node,
        name: &'t str,
        pipe: Option<&'t Pipe>,
    ) -> EResult<()> {
        self.at(node);
        let Some((root, src)) = find(self.sources, name) else {
            return self.fail(format!("template {} not defined", gostr::quote(name)));
        };
        if self.depth >= MAX_EXEC_DEPTH {
            return self.fail(format!("exceeded maximum template depth ({MAX_EXEC_DEPTH})"));
        }
        let dot = self.eval_pipeline(dot, pipe)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$".to_string(), dot.clone())]);
        let saved_name = std::mem::replace(&mut self.tmpl_name, name);
        let saved_text = std::mem::replace(&mut self.text, src.text);
        let saved_parse_name = std::mem::replace(&mut self.parse_name, src.name);
        self.depth += 1;
        let r = self.walk_list(&dot, root);
        self.depth -= 1;
        self.tmpl_name = saved_name;
        self.text = saved_text;
        self.parse_name = saved_parse_name;
        self.vars = saved_vars;
        r.map(|_| ())
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: Option<&'t Pipe>) -> EResult<Value> {
        super::deep(|| self.eval_pipeline_here(dot, pipe))
    }

    fn eval_pipeline_here(&mut self, dot: &Value, pipe: Option<&'t Pipe>) -> EResult<Value> {
        let Some(pipe) = pipe else { return Ok(Value::Invalid) };
        self.at(pipe);
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            value = Some(match v {
                Value::NilIface => Value::Invalid,
                v => v,
            });
        }
        let value = value.unwrap_or(Value::Invalid);
        for var in &pipe.decl {
            if pipe.is_assign {
                self.set_var(&var.ident[0], value.clone())?;
            } else {
                self.vars.push((var.ident[0].clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], fin: &Option<Value>) -> EResult<()> {
        if args.len() > 1 || fin.is_some() {
            return self.fail(format!("can't give argument to non-function {}", args[0].go_string()));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'t Command, fin: Option<Value>) -> EResult<Value> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { ident, .. } => return self.eval_field_node(dot, first, ident, Some(&cmd.args), fin),
            Arg::Chain { node, field, .. } => {
                return self.eval_chain(dot, first, node, field, Some(&cmd.args), fin);
            }
            Arg::Identifier { name, .. } => {
                return self.eval_function(dot, first, cmd, name, Some(&cmd.args), fin);
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                return self.eval_pipeline(dot, Some(p));
            }
            Arg::Variable(v) => return self.eval_variable(dot, v, Some(&cmd.args), fin),
            _ => {}
        }
        self.at(first);
        self.not_a_function(&cmd.args, &fin)?;
        match first {
            Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => self.fail("nil is not a command"),
            Arg::Number(n) => self.ideal_constant(n),
            Arg::String { text, .. } => Ok(Value::str(text)),
            _ => self.fail(format!("can't evaluate command {}", gostr::quote(&first.go_string()))),
        }
    }

    fn ideal_constant(&mut self, n: &'t NumberNode) -> EResult<Value> {
        self.at(n_as_node(n));
        let t = &n.text;
        let hex_int = t.len() > 2
            && t.starts_with('0')
            && matches!(t.as_bytes()[1], b'x' | b'X')
            && !t.contains(['p', 'P']);
        let rune_int = t.starts_with('\'');
        if n.is_float && !hex_int && !rune_int && t.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(Value::Float(n.float64));
        }
        if n.is_int {
            return Ok(Value::Int(n.int64));
        }
        if n.is_uint {
            return self.fail(format!("{t} overflows int"));
        }
        Ok(Value::Invalid)
    }

    fn eval_field_node(
        &mut self,
        dot: &Value,
        node: &'t Arg,
        ident: &'t [String],
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.at(node);
        self.eval_field_chain(dot, dot.clone(), node, ident, args, fin)
    }

    fn eval_chain(
        &mut self,
        dot: &Value,
        chain: &'t Arg,
        node: &'t Arg,
        field: &'t [String],
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.at(chain);
        if field.is_empty() {
            return self.fail("internal error: no fields in evalChainNode");
        }
        if let Arg::Nil { .. } = node {
            return self.fail(format!("indirection through explicit nil in {}", chain.go_string()));
        }
        let pipe = self.eval_arg(dot, None, node)?;
        self.eval_field_chain(dot, pipe, chain, field, args, fin)
    }

    fn eval_variable(
        &mut self,
        dot: &Value,
        v: &'t VarNode,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.at(v);
        let value = self.var_value(&v.ident[0])?;
        if v.ident.len() == 1 {
            if let Some(a) = args {
                self.not_a_function(a, &fin)?;
            } else if fin.is_some() {
                return self.fail(format!("can't give argument to non-function {}", v.go_string()));
            }
            return Ok(value);
        }
        self.eval_field_chain(dot, value, v, &v.ident[1..], args, fin)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut receiver: Value,
        node: &'t dyn GoNode,
        ident: &'t [String],
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> EResult<Value> {
        let n = ident.len();
        for name in &ident[..n - 1] {
            receiver = self.eval_field(dot, name, node, None, None, receiver)?;
        }
        self.eval_field(dot, &ident[n - 1], node, args, fin, receiver)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        field: &'t str,
        node: &'t dyn GoNode,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
        receiver: Value,
    ) -> EResult<Value> {
        if !receiver.is_valid() {
            return Ok(Value::Invalid);
        }
        let typ = receiver.type_name();
        if let Value::NilIface = receiver {
            return self.fail(format!("nil pointer evaluating {typ}.{field}"));
        }
        if let Value::Time { t, .. } = &receiver
            && let Some(sig) = funcs::time_method(field)
        {
            let t = *t;
            return self.eval_call(dot, Callee::Method(t), false, node, field, sig, args, fin);
        }
        if let Some(sig) = funcs::am_method(&receiver, field) {
            return self.eval_call(dot, Callee::AmMethod(receiver), false, node, field, sig, args, fin);
        }
        let has_args = args.is_some_and(|a| a.len() > 1) || fin.is_some();
        let am_field = match &receiver {
            Value::AmData(d) => match field {
                "Receiver" => Some(Value::Str(d.receiver.clone())),
                "Status" => Some(Value::Str(d.status.clone())),
                "Alerts" => Some(Value::Alerts(d.alerts.clone())),
                "GroupLabels" => Some(Value::Kv(d.group_labels.clone())),
                "CommonLabels" => Some(Value::Kv(d.common_labels.clone())),
                "CommonAnnotations" => Some(Value::Kv(d.common_annotations.clone())),
                "ExternalURL" => Some(Value::Str(d.external_url.clone())),
                _ => None,
            },
            Value::AmAlert(a) => match field {
                "Status" => Some(Value::Str(a.status.clone())),
                "Labels" => Some(Value::Kv(a.labels.clone())),
                "Annotations" => Some(Value::Kv(a.annotations.clone())),
                "StartsAt" => Some(Value::Time { t: a.starts_at, ptr: false, id: 0 }),
                "EndsAt" => Some(Value::Time { t: a.ends_at, ptr: false, id: 0 }),
                "GeneratorURL" => Some(Value::Str(a.generator_url.clone())),
                "Fingerprint" => Some(Value::Str(a.fingerprint.clone())),
                _ => None,
            },
            Value::Pair(p) => match field {
                "Name" => Some(Value::str(&p.0)),
                "Value" => Some(Value::str(&p.1)),
                _ => None,
            },
            _ => None,
        };
        if let Some(v) = am_field {
            if has_args {
                return self.fail(format!("{field} has arguments but cannot be invoked as function"));
            }
            return Ok(v);
        }
        match &receiver {
            Value::AmData(_) | Value::AmAlert(_) | Value::Pair(_) => {
                self.fail(format!("can't evaluate field {field} in type {typ}"))
            }
            Value::Root(r) => {
                let v = match field {
                    "Labels" => Value::StrMap(r.labels.clone()),
                    "ExternalLabels" => Value::StrMap(r.external_labels.clone()),
                    "ExternalURL" => Value::Str(r.external_url.clone()),
                    "Value" => Value::Float(r.value),
                    _ => return self.fail(format!("can't evaluate field {field} in type {typ}")),
                };
                if has_args {
                    return self.fail(format!("{field} has arguments but cannot be invoked as function"));
                }
                Ok(v)
            }
            Value::Sample(s) => {
                if field != "Labels" && field != "Value" {
                    return self.fail(format!("can't evaluate field {field} in type {typ}"));
                }
                let Some(s) = s else {
                    return self.fail(format!("nil pointer evaluating {typ}.{field}"));
                };
                if has_args {
                    return self.fail(format!("{field} has arguments but cannot be invoked as function"));
                }
                Ok(if field == "Labels" { Value::StrMap(s.labels.clone()) } else { Value::Float(s.value) })
            }
            Value::StrMap(m) | Value::Kv(m) => {
                if has_args {
                    return self.fail(format!("{field} is not a method but has arguments"));
                }
                Ok(Value::str(m.get(field).map_or("", String::as_str)))
            }
            Value::IfaceMap(m) => {
                if has_args {
                    return self.fail(format!("{field} is not a method but has arguments"));
                }
                Ok(match m.get(field) {
                    Some(Value::Invalid) | None => Value::NilIface,
                    Some(v) => v.clone(),
                })
            }
            Value::Time { .. } if funcs::is_other_time_method(field) => {
                self.unsupported(format!("the time.Time method {field}"))
            }
            _ => self.fail(format!("can't evaluate field {field} in type {typ}")),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        ident: &'t Arg,
        cmd: &'t dyn GoNode,
        name: &'t str,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.at(ident);
        let Some(sig) = funcs::signature(self.env.dialect, name) else {
            return self.fail(format!("{} is not a defined function", gostr::quote(name)));
        };
        let builtin = funcs::is_builtin(name);
        self.eval_call(dot, Callee::Func(name), builtin, cmd, name, sig, args, fin)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_call(
        &mut self,
        dot: &Value,
        callee: Callee<'t>,
        builtin: bool,
        node: &'t dyn GoNode,
        name: &str,
        sig: Sig,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> EResult<Value> {
        let args: &'t [Arg] = match args {
            Some(a) => &a[1..],
            None => &[],
        };
        let num_in = args.len() + usize::from(fin.is_some());
        let num_fixed = if sig.variadic.is_some() { sig.params.len() } else { args.len() };
        if sig.variadic.is_some() {
            if num_in < num_fixed {
                return self.fail(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    sig.params.len(),
                    args.len()
                ));
            }
        } else if num_in != sig.params.len() {
            return self
                .fail(format!("wrong number of args for {name}: want {} got {num_in}", sig.params.len()));
        }
        if sig.results != 1 {
            return self.fail(format!(
                "can't call method/function {} with {} results",
                gostr::quote(name),
                sig.results
            ));
        }
        if builtin && (name == "and" || name == "or") {
            let mut v = Value::Invalid;
            for a in args {
                v = self.eval_arg(dot, Some(Param::Reflect), a)?;
                if v.truth() == (name == "or") {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = self.validate_type(f, Some(Param::Reflect))?;
            }
            return Ok(v);
        }
        let mut argv = Vec::with_capacity(num_in);
        let mut i = 0;
        while i < num_fixed && i < args.len() {
            let v = self.eval_arg(dot, Some(sig.params[i]), &args[i])?;
            argv.push(v);
            i += 1;
        }
        if let Some(var) = sig.variadic {
            while i < args.len() {
                let v = self.eval_arg(dot, Some(var), &args[i])?;
                argv.push(v);
                i += 1;
            }
        }
        if let Some(f) = fin {
            let t = match sig.variadic {
                Some(var) if num_in > num_fixed => var,
                _ => sig.params[num_in - 1],
            };
            let v = self.validate_type(f, Some(t))?;
            argv.push(v);
        }
        let result = match callee {
            Callee::Func(fname) => funcs::call(self, fname, argv),
            Callee::Method(t) => funcs::call_time_method(self, t, name, argv),
            Callee::AmMethod(receiver) => funcs::call_am_method(&receiver, name, argv),
        };
        match result {
            Ok(v) => Ok(v),
            Err(funcs::CallError::Go(e)) => {
                self.at(node);
                self.fail(format!("error calling {name}: {e}"))
            }
            Err(funcs::CallError::Unsupported(u)) => {
                self.at(node);
                self.unsupported(u)
            }
        }
    }

    fn validate_type(&mut self, value: Value, typ: Option<Param>) -> EResult<Value> {
        let Some(typ) = typ else { return Ok(value) };
        if !value.is_valid() {
            if typ.can_be_nil() {
                return Ok(typ.zero());
            }
            return self.fail(format!("invalid value; expected {}", typ.name()));
        }
        match (typ, &value) {
            (Param::Reflect, _) => return Ok(value),
            (Param::Any, Value::NilIface) => return Ok(Value::Invalid),
            (_, Value::NilIface) => {
                return self
                    .fail(format!("wrong type for value; expected {}; got interface {{}}", typ.name()));
            }
            _ => {}
        }
        if !typ.accepts(&value) {
            return self.fail(format!(
                "wrong type for value; expected {}; got {}",
                typ.name(),
                value.type_name()
            ));
        }
        Ok(value)
    }

    fn eval_arg(&mut self, dot: &Value, typ: Option<Param>, n: &'t Arg) -> EResult<Value> {
        self.at(n);
        match n {
            Arg::Dot { .. } => return self.validate_type(dot.clone(), typ),
            Arg::Nil { .. } => {
                return match typ {
                    Some(t) if t.can_be_nil() => Ok(t.zero()),
                    Some(t) => self.fail(format!("cannot assign nil to {}", t.name())),
                    None => Ok(Value::Invalid),
                };
            }
            Arg::Field { ident, .. } => {
                let v = self.eval_field_node(dot, n, ident, Some(std::slice::from_ref(n)), None)?;
                return self.validate_type(v, typ);
            }
            Arg::Variable(v) => {
                let val = self.eval_variable(dot, v, None, None)?;
                return self.validate_type(val, typ);
            }
            Arg::Pipe(p) => {
                let v = self.eval_pipeline(dot, Some(p))?;
                return self.validate_type(v, typ);
            }
            Arg::Identifier { name, .. } => {
                let v = self.eval_function(dot, n, n, name, None, None)?;
                return self.validate_type(v, typ);
            }
            Arg::Chain { node, field, .. } => {
                let v = self.eval_chain(dot, n, node, field, None, None)?;
                return self.validate_type(v, typ);
            }
            _ => {}
        }
        let Some(typ) = typ else {
            return self.fail(format!("can't handle {} for arg of unknown type", n.go_string()));
        };
        match typ {
            Param::String => match n {
                Arg::String { text, .. } => Ok(Value::str(text)),
                _ => self.fail(format!("expected string; found {}", n.go_string())),
            },
            Param::Any | Param::Reflect => self.eval_empty_interface(dot, n),
            Param::Query | Param::Sample | Param::StrSlice => {
                self.fail(format!("can't handle {} for arg of type {}", n.go_string(), typ.name()))
            }
        }
    }

    fn eval_empty_interface(&mut self, dot: &Value, n: &'t Arg) -> EResult<Value> {
        self.at(n);
        match n {
            Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Number(num) => self.ideal_constant(num),
            Arg::String { text, .. } => Ok(Value::str(text)),
            _ => {
                self.fail(format!("can't handle assignment of {} to empty interface argument", n.go_string()))
            }
        }
    }

    fn print_value(&mut self, node: &'t Node, v: &Value) -> EResult<()> {
        self.at(node);
        match gofmt::print_action(v) {
            Ok(s) if self.env.escape_html && !matches!(v, Value::Html(_)) => {
                self.out.push_str(&funcs::html_text_escape(&s));
                Ok(())
            }
            Ok(s) => {
                self.out.push_str(&s);
                Ok(())
            }
            Err(u) => self.unsupported(u),
        }
    }
}

/// What `evalCall` invokes: a function by name, a method of a time value or a method of one
/// of Alertmanager's template types.
enum Callee<'t> {
    Func(&'t str),
    Method(super::value::GoTime),
    AmMethod(Value),
}

fn n_as_node(n: &NumberNode) -> &dyn GoNode {
    n
}

impl GoNode for NumberNode {
    fn pos(&self) -> usize {
        self.pos
    }
    fn write(&self, out: &mut String) {
        out.push_str(&self.text);
    }
}
