//! The plan for people, in the manner of `terraform plan`: one line per change, the fields
//! that change beneath it, a count at the end.

use std::fmt::Write;

use super::{Action, Plan};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Color,
}

fn paint(style: Style, action: Action, s: &str) -> String {
    if style == Style::Plain {
        return s.to_string();
    }
    let code = match action {
        Action::Create => "32",
        Action::Update => "33",
        Action::Replace => "35",
        Action::Delete => "31",
        Action::Wait => "36",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// Lines are cut to this many columns when the caller does not know the terminal's width.
pub const DEFAULT_WIDTH: usize = 120;

pub fn render_human(plan: &Plan, style: Style) -> String {
    render_human_within(plan, style, DEFAULT_WIDTH)
}

/// The plan for people, each line within `width` columns: a long structured value (a policy,
/// a dashboard body) is shown as what changed inside it, one statement, key or widget per line,
/// as `terraform plan` shows nested blocks; the full values are in `--output json`.
pub fn render_human_within(plan: &Plan, style: Style, width: usize) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        out.push_str("No changes. The environment matches the configuration.\n");
        return out;
    }
    for c in &plan.changes {
        let head = format!("{:>3} {}", c.action().symbol(), c.address());
        let _ = write!(out, "{}", paint(style, c.action(), &head));
        if let Some(id) = c.id() {
            let room = width.max(40).saturating_sub(head.chars().count() + 3).max(16);
            let _ = write!(out, " ({})", short_id(id, room));
        }
        out.push('\n');
        if let Some(reason) = c.reason() {
            let _ = writeln!(out, "      # {reason}");
        }
        for f in c.fields() {
            let forces = if f.forces_replacement { "  # forces replacement" } else { "" };
            if c.action() == Action::Create {
                let _ = writeln!(out, "{}", cut(&format!("      {} = {}", f.field, f.to), width));
                continue;
            }
            let line = format!("      {}: {} -> {}{forces}", f.field, f.from, f.to);
            let nested = match (structured(&f.from), structured(&f.to)) {
                (Some(a), Some(b)) if line.chars().count() > width => Some((a, b)),
                (None, Some(b)) if f.from.is_empty() && line.chars().count() > width => {
                    Some((serde_json::Value::Null, b))
                }
                _ => None,
            };
            match nested {
                Some((from, to)) => {
                    let _ = writeln!(out, "      {}:{forces}", f.field);
                    let mut lines = Vec::new();
                    json_diff(&from, &to, "", &mut lines);
                    for l in lines {
                        let _ = writeln!(out, "{}", cut(&format!("        {l}"), width));
                    }
                }
                None => {
                    let _ = writeln!(out, "{}", cut(&line, width));
                }
            }
        }
    }
    let n = plan.counts();
    let _ = write!(
        out,
        "\nPlan: {} to create, {} to update, {} to replace, {} to delete.",
        n.create, n.update, n.replace, n.delete
    );
    if n.wait > 0 {
        let _ = write!(out, " {} in progress (waited for, not changed).", n.wait);
    }
    out.push('\n');
    out
}

/// An ID for a person within `max` characters: the resource part of an ARN
/// (`service/webapp/webapp`), then cut from the front (the distinctive part is at the end)
/// with `…`. The full ID is in `--output json` (and `status --wide`).
pub fn short_id(id: &str, max: usize) -> String {
    if id.chars().count() <= max {
        return id.to_string();
    }
    let resource = if id.starts_with("arn:") { id.splitn(6, ':').nth(5).unwrap_or(id) } else { id };
    let n = resource.chars().count();
    if n <= max {
        return resource.to_string();
    }
    let tail: String = resource.chars().skip(n - (max.max(2) - 1)).collect();
    format!("…{tail}")
}

/// A rendered value that is a JSON object or list.
fn structured(text: &str) -> Option<serde_json::Value> {
    let t = text.trim_start();
    if !(t.starts_with('{') || t.starts_with('[')) {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// `line` within `width` columns, cut with `…` (the full value is in `--output json`).
fn cut(line: &str, width: usize) -> String {
    let width = width.max(40);
    if line.chars().count() <= width {
        return line.to_string();
    }
    let kept: String = line.chars().take(width - 1).collect();
    format!("{kept}…")
}

/// The key an element of a list is known by across versions: an IAM statement's `Sid`, a
/// named thing's `name`.
fn element_key(v: &serde_json::Value) -> Option<String> {
    ["sid", "Sid", "name", "Name", "field"]
        .iter()
        .find_map(|k| v.get(*k).and_then(|s| s.as_str()).map(|s| format!("{k}={s}")))
}

/// What differs between two JSON values, one line per key or element: `+ key: value` added,
/// `- key: value` removed, `~ key: from -> to` changed; nested objects by their path.
fn json_diff(from: &serde_json::Value, to: &serde_json::Value, path: &str, lines: &mut Vec<String>) {
    use serde_json::Value;
    let at = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) if x == y => {}
                    (Some(x), Some(y)) => json_diff(x, y, &at(k), lines),
                    (None, Some(y)) => lines.push(format!("+ {}: {y}", at(k))),
                    (Some(x), None) => lines.push(format!("- {}: {x}", at(k))),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            let keyed = |items: &Vec<Value>| -> Option<Vec<(String, Value)>> {
                items.iter().map(|v| element_key(v).map(|k| (k, v.clone()))).collect()
            };
            if let (Some(ka), Some(kb)) = (keyed(a), keyed(b)) {
                // Matched by key: a changed statement shows what changed inside it.
                let mut seen = std::collections::BTreeSet::new();
                for (k, x) in &ka {
                    seen.insert(k.clone());
                    match kb.iter().find(|(kk, _)| kk == k) {
                        Some((_, y)) if x == y => {}
                        Some((_, y)) => json_diff(x, y, &at(&format!("[{k}]")), lines),
                        None => lines.push(format!("- {}: {x}", at(&format!("[{k}]")))),
                    }
                }
                for (k, y) in kb.iter().filter(|(k, _)| !seen.contains(k)) {
                    lines.push(format!("+ {}: {y}", at(&format!("[{k}]"))));
                }
                return;
            }
            // Compared as sets: what was removed, what was added.
            let name = if path.is_empty() { String::new() } else { format!("{path}: ") };
            for x in a.iter().filter(|x| !b.contains(x)) {
                lines.push(format!("- {name}{x}"));
            }
            for y in b.iter().filter(|y| !a.contains(y)) {
                lines.push(format!("+ {name}{y}"));
            }
        }
        (Value::Null, y) => {
            lines.push(format!("+ {}{y}", if path.is_empty() { String::new() } else { format!("{path}: ") }))
        }
        (x, y) => lines.push(format!("~ {}: {x} -> {y}", if path.is_empty() { "(value)" } else { path })),
    }
}

#[cfg(test)]
mod structured_tests {
    use super::*;

    #[test]
    fn a_widened_policy_shows_the_statement_that_changed_one_line_each() {
        let from = serde_json::json!([
            {"sid": "PullImage", "effect": "Allow", "actions": ["ecr:BatchGetImage"], "resources": ["arn:a"]},
            {"sid": "WriteLog", "effect": "Allow", "actions": ["logs:PutLogEvents"], "resources": ["arn:l"]}
        ]);
        let to = serde_json::json!([
            {"sid": "PullImage", "effect": "Allow", "actions": ["ecr:BatchGetImage"], "resources": ["arn:a"]},
            {"sid": "WriteLog", "effect": "Allow", "actions": ["logs:PutLogEvents"], "resources": ["*"]},
            {"sid": "Everything", "effect": "Allow", "actions": ["*"], "resources": ["*"]}
        ]);
        let mut lines = Vec::new();
        json_diff(&from, &to, "", &mut lines);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[0].starts_with("- [sid=WriteLog].resources: \"arn:l\""), "{lines:#?}");
        assert!(lines[1].starts_with("+ [sid=WriteLog].resources: \"*\""), "{lines:#?}");
        assert!(lines[2].starts_with("+ [sid=Everything]: "), "{lines:#?}");
    }

    #[test]
    fn every_line_of_a_plan_fits_the_width() {
        assert_eq!(cut("short", 80), "short");
        let long = "x".repeat(300);
        assert_eq!(cut(&long, 80).chars().count(), 80);
    }
}
