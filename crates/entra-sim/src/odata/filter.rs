//! A parser and evaluator for the `$filter` subset directory objects support:
//! comparisons (`eq ne gt ge lt le`), `startsWith(p,'x')`, `endsWith(p,'x')`, `and`, `or`,
//! `not`, parentheses, and lambda `any` on collections (`otherMails/any(x:x eq 'a@b')`).
//! Literals: OData strings with `''` escaping, enum literals (`microsoft.graph.riskLevel'high'`,
//! taken as their string), `null`, `true`, `false`, numbers and unquoted date-times.
//!
//! The parser rejects anything else ("Invalid filter clause"), so an injection such as
//! `userPrincipalName eq 'x' or 1 eq 1'` is a syntax error, never a broader match.

use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Null,
    Bool(bool),
    /// Numbers and unquoted date-times, kept as text.
    Raw(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(String, CmpOp, Literal),
    Func(Func, String, String),
    /// `collection/any(var: body)`; inside `body` the property `var` is the element.
    Any(String, String, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invalid filter clause: {}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Raw(String),
    LParen,
    RParen,
    Comma,
    Colon,
    Slash,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, FilterError> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' => {
                out.push(Tok::Colon);
                i += 1
            }
            '/' => {
                out.push(Tok::Slash);
                i += 1
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(FilterError(format!(
                                "Unterminated string literal at position {i} in '{s}'."
                            )));
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                // An enum literal is a qualified type name immediately followed by a string.
                if let Some(Tok::Ident(name)) = out.last()
                    && name.contains('.')
                {
                    out.pop();
                }
                out.push(Tok::Str(v));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || ":.+-".contains(chars[i]))
                {
                    i += 1;
                }
                out.push(Tok::Raw(chars[start..i].iter().collect()));
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == '@' || c == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
                {
                    i += 1;
                }
                if i == start {
                    return Err(FilterError(format!(
                        "Syntax error: character '{c}' is not valid at position {i} in '{s}'."
                    )));
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => {
                return Err(FilterError(format!(
                    "Syntax error: character '{other}' is not valid at position {i} in '{s}'."
                )));
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    src: &'a str,
}

impl Parser<'_> {
    fn err<T>(&self, what: &str) -> Result<T, FilterError> {
        Err(FilterError(format!(
            "Syntax error: {what} at token {} in '{}'.",
            self.pos, self.src
        )))
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }

    fn expect(&mut self, t: Tok, what: &str) -> Result<(), FilterError> {
        if self.peek() == Some(&t) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(&format!("expected {what}"))
        }
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn property(&mut self) -> Result<String, FilterError> {
        match self.next() {
            Some(Tok::Ident(p)) if !is_keyword(&p) => Ok(p),
            _ => {
                self.pos -= 1;
                self.err("expected a property name")
            }
        }
    }

    fn string(&mut self) -> Result<String, FilterError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            _ => {
                self.pos -= 1;
                self.err("expected a string literal")
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, FilterError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Literal::Str(s)),
            Some(Tok::Raw(r)) => Ok(Literal::Raw(r)),
            Some(Tok::Ident(i)) if i.eq_ignore_ascii_case("null") => Ok(Literal::Null),
            Some(Tok::Ident(i)) if i.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Tok::Ident(i)) if i.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            _ => {
                self.pos -= 1;
                self.err("expected a literal")
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, FilterError> {
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.or()?;
            self.expect(Tok::RParen, "')'")?;
            return Ok(e);
        }
        let name = self.property()?;
        // Function call.
        if self.peek() == Some(&Tok::LParen) {
            let func = match name.to_ascii_lowercase().as_str() {
                "startswith" => Func::StartsWith,
                "endswith" => Func::EndsWith,
                _ => return self.err(&format!("unknown function '{name}'")),
            };
            self.pos += 1;
            let prop = self.property()?;
            self.expect(Tok::Comma, "','")?;
            let value = self.string()?;
            self.expect(Tok::RParen, "')'")?;
            return Ok(Expr::Func(func, prop, value));
        }
        // Lambda: prop/any(x: ...)
        if self.peek() == Some(&Tok::Slash) {
            self.pos += 1;
            let op = self.property()?;
            if !op.eq_ignore_ascii_case("any") {
                return self.err(&format!("unsupported lambda operator '{op}'"));
            }
            self.expect(Tok::LParen, "'('")?;
            let var = self.property()?;
            self.expect(Tok::Colon, "':'")?;
            let body = self.or()?;
            self.expect(Tok::RParen, "')'")?;
            return Ok(Expr::Any(name, var, Box::new(body)));
        }
        let op = match self.next() {
            Some(Tok::Ident(o)) => match o.to_ascii_lowercase().as_str() {
                "eq" => CmpOp::Eq,
                "ne" => CmpOp::Ne,
                "gt" => CmpOp::Gt,
                "ge" => CmpOp::Ge,
                "lt" => CmpOp::Lt,
                "le" => CmpOp::Le,
                _ => {
                    self.pos -= 1;
                    return self.err("expected a comparison operator");
                }
            },
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return self.err("expected a comparison operator");
            }
        };
        let lit = self.literal()?;
        Ok(Expr::Cmp(name, op, lit))
    }
}

fn is_keyword(s: &str) -> bool {
    [
        "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "null", "true", "false",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(s))
}

pub fn parse(s: &str) -> Result<Expr, FilterError> {
    let toks = tokenize(s)?;
    if toks.is_empty() {
        return Err(FilterError(
            "The query specified in the URI is not valid.".into(),
        ));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        src: s,
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return p.err("unexpected text after the expression");
    }
    Ok(e)
}

/// A property value as the evaluator sees it, borrowed from the record where it can be: the
/// evaluator runs once per object of a list, so copying every property would dominate a lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Str(Option<Cow<'a, str>>),
    Bool(Option<bool>),
    /// Comparable text (ISO dates compare lexically).
    Date(Option<Cow<'a, str>>),
    List(Cow<'a, [String]>),
}

/// Something a filter can be evaluated against.
pub trait Record {
    /// `None` for an unknown property.
    fn get(&self, property: &str) -> Option<Value<'_>>;
}

impl Expr {
    /// Visits every node (for the advanced-query and property checks).
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Or(a, b) | Expr::And(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Not(a) | Expr::Any(_, _, a) => a.walk(f),
            _ => {}
        }
    }

    pub fn eval(&self, r: &dyn Record) -> bool {
        self.eval_in(r, None)
    }

    /// `(property, text)` pairs one of which every match must hold (`property eq 'text'`, or an
    /// element equal to it for `property/any(x: x eq 'text')`), so a list can skip objects
    /// without evaluating the whole expression; `None` when a match needs no such equality.
    pub fn required_equalities(&self) -> Option<Vec<(&str, &str)>> {
        match self {
            Expr::Cmp(p, CmpOp::Eq, Literal::Str(l)) => Some(vec![(p.as_str(), l.as_str())]),
            Expr::Any(p, var, body) => {
                let inner = body.required_equalities()?;
                inner
                    .iter()
                    .all(|(q, _)| q == var)
                    .then(|| inner.into_iter().map(|(_, l)| (p.as_str(), l)).collect())
            }
            Expr::Or(a, b) => {
                let mut v = a.required_equalities()?;
                v.extend(b.required_equalities()?);
                Some(v)
            }
            Expr::And(a, b) => a.required_equalities().or_else(|| b.required_equalities()),
            _ => None,
        }
    }

    fn eval_in(&self, r: &dyn Record, element: Option<(&str, &str)>) -> bool {
        let lookup = |p: &str| -> Value<'_> {
            match element {
                Some((var, v)) if var == p => Value::Str(Some(Cow::Borrowed(v))),
                _ => r.get(p).unwrap_or(Value::Str(None)),
            }
        };
        match self {
            Expr::Or(a, b) => a.eval_in(r, element) || b.eval_in(r, element),
            Expr::And(a, b) => a.eval_in(r, element) && b.eval_in(r, element),
            Expr::Not(a) => !a.eval_in(r, element),
            Expr::Func(func, p, needle) => match lookup(p) {
                Value::Str(Some(s)) => {
                    let (s, n) = (s.to_lowercase(), needle.to_lowercase());
                    match func {
                        Func::StartsWith => s.starts_with(&n),
                        Func::EndsWith => s.ends_with(&n),
                    }
                }
                _ => false,
            },
            Expr::Cmp(p, op, lit) => compare(&lookup(p), *op, lit),
            Expr::Any(p, var, body) => match lookup(p) {
                Value::List(items) => items
                    .iter()
                    .any(|item| body.eval_in(r, Some((var.as_str(), item.as_str())))),
                _ => false,
            },
        }
    }
}

fn compare(v: &Value, op: CmpOp, lit: &Literal) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (v, lit) {
        (Value::Str(None) | Value::Bool(None) | Value::Date(None), Literal::Null) => {
            Some(Ordering::Equal)
        }
        (_, Literal::Null) => None,
        (Value::Str(Some(s)), Literal::Str(l)) => Some(cmp_ignore_case(s, l)),
        (Value::Bool(Some(b)), Literal::Bool(l)) => Some(b.cmp(l)),
        (Value::Date(Some(d)), Literal::Raw(l) | Literal::Str(l)) => {
            Some(d.as_ref().cmp(l.as_str()))
        }
        _ => None,
    };
    match (op, ord) {
        (CmpOp::Eq, Some(o)) => o == Ordering::Equal,
        (CmpOp::Ne, Some(o)) => o != Ordering::Equal,
        (CmpOp::Ne, None) => true,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Ge, Some(o)) => o != Ordering::Less,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Le, Some(o)) => o != Ordering::Greater,
        _ => false,
    }
}

/// Case-insensitive equality, as `eq` compares strings.
pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    cmp_ignore_case(a, b) == std::cmp::Ordering::Equal
}

/// Graph compares strings case-insensitively; this orders them the way comparing the lowercased
/// texts would, without allocating both.
fn cmp_ignore_case(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a
            .bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase()));
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .cmp(b.chars().flat_map(char::to_lowercase))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct R;
    impl Record for R {
        fn get(&self, p: &str) -> Option<Value<'_>> {
            match p {
                "userPrincipalName" => Some(Value::Str(Some("o'brien@contoso.com".into()))),
                "mail" => Some(Value::Str(Some("Pat.OBrien@contoso.com".into()))),
                "otherMails" => Some(Value::List(vec!["pat@gmail.com".to_owned()].into())),
                "accountEnabled" => Some(Value::Bool(Some(true))),
                "mobilePhone" => Some(Value::Str(None)),
                _ => None,
            }
        }
    }

    fn eval(s: &str) -> bool {
        parse(s).unwrap().eval(&R)
    }

    #[test]
    fn escaping_and_case() {
        assert!(eval("userPrincipalName eq 'O''Brien@contoso.com'"));
        assert!(eval("startsWith(mail,'pat.')"));
        assert!(eval("endswith(mail, '@CONTOSO.com')"));
        assert!(eval("otherMails/any(x:x eq 'PAT@gmail.com')"));
        assert!(eval("otherMails/any(x:startsWith(x,'pat'))"));
        assert!(!eval("otherMails/any(x:x eq 'other@gmail.com')"));
        assert!(eval("accountEnabled eq true and mobilePhone eq null"));
        assert!(eval("mail eq 'nobody' or (not (accountEnabled eq false))"));
        assert!(eval("mail ne 'nobody'"));
        assert!(!eval("riskLevel eq microsoft.graph.riskLevel'high'"));
    }

    #[test]
    fn comparison_ignores_case_beyond_ascii_without_changing_order() {
        use std::cmp::Ordering;
        assert_eq!(
            cmp_ignore_case("JÜRGEN@x.de", "jürgen@X.DE"),
            Ordering::Equal
        );
        assert_eq!(cmp_ignore_case("ÄBC", "äbd"), Ordering::Less);
        for (a, b) in [("Adele", "alex"), ("zoë", "ZOE"), ("b", "Ä"), ("", "a")] {
            assert_eq!(
                cmp_ignore_case(a, b),
                a.to_lowercase().cmp(&b.to_lowercase()),
                "{a} vs {b}"
            );
        }
    }

    #[test]
    fn required_equalities_name_what_every_match_must_hold() {
        let eqs = |f: &str| {
            parse(f).unwrap().required_equalities().map(|v| {
                v.into_iter()
                    .map(|(p, l)| format!("{p}={l}"))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            eqs("userPrincipalName eq 'a@b' or mail eq 'a@b' or otherMails/any(x:x eq 'a@b')"),
            Some(vec![
                "userPrincipalName=a@b".into(),
                "mail=a@b".into(),
                "otherMails=a@b".into()
            ])
        );
        assert_eq!(
            eqs("accountEnabled eq true and mail eq 'x'"),
            Some(vec!["mail=x".into()])
        );
        // Any branch without an equality means any object may match.
        assert_eq!(eqs("mail eq 'x' or startsWith(mail,'y')"), None);
        assert_eq!(eqs("mail ne 'x'"), None);
        assert_eq!(eqs("not (mail eq 'x')"), None);
        assert_eq!(eqs("otherMails/any(x:startsWith(x,'a'))"), None);
    }

    #[test]
    fn injection_attempts_are_syntax_errors_or_literal() {
        for bad in [
            "userPrincipalName eq 'x' or 1 eq 1'",
            "userPrincipalName eq 'x' or 1 eq 1",
            "userPrincipalName eq 'x'' or ''1'' eq ''1'",
            "userPrincipalName eq 'x') or (1 eq 1",
            "userPrincipalName eq",
            "eq 'x'",
            "userPrincipalName eq 'x' and",
            "startsWith(mail)",
            "mail eq 'a' ; drop",
            "",
        ] {
            let r = parse(bad);
            if let Ok(e) = &r {
                // Only possible when the quote was properly escaped: then it is a single literal.
                assert!(!e.eval(&R), "{bad:?} parsed as {e:?} and matched");
            }
        }
        assert!(parse("userPrincipalName eq 'x' or 1 eq 1'").is_err());
        assert_eq!(
            parse("userPrincipalName eq 'x'' or ''1'' eq ''1'").unwrap(),
            Expr::Cmp(
                "userPrincipalName".into(),
                CmpOp::Eq,
                Literal::Str("x' or '1' eq '1".into())
            )
        );
    }
}
