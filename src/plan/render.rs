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

pub fn render_human(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        out.push_str("No changes. The environment matches the configuration.\n");
        return out;
    }
    for c in &plan.changes {
        let head = format!("{:>3} {}", c.action().symbol(), c.address());
        let _ = write!(out, "{}", paint(style, c.action(), &head));
        if let Some(id) = c.id() {
            let _ = write!(out, " ({id})");
        }
        out.push('\n');
        if let Some(reason) = c.reason() {
            let _ = writeln!(out, "      # {reason}");
        }
        for f in c.fields() {
            if c.action() == Action::Create {
                let _ = writeln!(out, "      {} = {}", f.field, f.to);
            } else {
                let forces = if f.forces_replacement { "  # forces replacement" } else { "" };
                let _ = writeln!(out, "      {}: {} -> {}{forces}", f.field, f.from, f.to);
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
