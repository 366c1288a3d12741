//! Diagnostics for people: the message, where, the source line with a caret, and what to do.

use berth_orchestrator::compose::Diagnostic;

pub fn errors(diags: &[Diagnostic]) {
    for d in diags {
        eprint!("{}", render("error", d));
    }
    if diags.len() > 1 {
        eprintln!("{} errors", diags.len());
    }
}

pub fn warning(d: &Diagnostic) {
    eprint!("{}", render("warning", d));
}

/// ```text
/// error: unknown key "imgae" in service "web"
///   --> compose.yaml:3:5
///    |
///  3 |     imgae: nginx
///    |     ^
///    = help: did you mean "image"?
/// ```
pub fn render(level: &str, d: &Diagnostic) -> String {
    let mut out = format!("{level}: {}\n", d.message);
    if !d.span.is_unknown() {
        out.push_str(&format!("  --> {}\n", d.span));
    }
    if let (Some(file), line) = (&d.span.file, d.span.line)
        && line > 0
        && let Ok(text) = std::fs::read_to_string(file)
        && let Some(src) = text.lines().nth(line - 1)
    {
        let num = line.to_string();
        let pad = " ".repeat(num.len());
        let caret_at = src.chars().take(d.span.column.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' });
        out.push_str(&format!(" {pad} |\n {num} | {src}\n {pad} | {}^\n", caret_at.collect::<String>()));
    }
    if let Some(h) = &d.hint {
        out.push_str(&format!("   = help: {h}\n"));
    }
    out
}
