//! Templates: MiniJinja (Jinja2 syntax), plain text, strict about undefined variables. A
//! template is checked when it is registered, so a variable its event does not carry is
//! refused then, never discovered at send time.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior};

use super::catalogue::EventType;

/// The longest subject and body a template may have, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 20_000;

/// Why a template was refused: the part (`subject` or `body`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub part: &'static str,
    pub message: String,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Plain text: nothing is HTML-escaped (the webhook carries it as a JSON string, email as
    // text/plain).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_keep_trailing_newline(false);
    env
}

fn check_part(
    env: &Environment<'_>,
    event: &EventType,
    part: &'static str,
    source: &str,
) -> Result<(), TemplateError> {
    let tpl = env.template_from_str(source).map_err(|e| TemplateError {
        part,
        message: format!(
            "is not a valid template: {}",
            e.detail().unwrap_or("syntax error")
        ),
    })?;
    let mut unknown: Vec<String> = tpl
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !event.carries(v))
        .collect();
    unknown.sort();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(TemplateError {
            part,
            message: format!(
                "uses {} which event {} does not carry (it carries {})",
                unknown.join(", "),
                event.name,
                event.variables.join(", ")
            ),
        })
    }
}

/// Checks a template of `event`: both parts parse, stay within their lengths, and use only the
/// event's variables. An SMS template has an empty subject.
pub fn check(event: &EventType, subject: &str, body: &str) -> Result<(), TemplateError> {
    if subject.chars().count() > MAX_SUBJECT_CHARS || subject.contains('\n') {
        return Err(TemplateError {
            part: "subject",
            message: format!("must be one line of at most {MAX_SUBJECT_CHARS} characters"),
        });
    }
    if body.trim().is_empty() || body.chars().count() > MAX_BODY_CHARS {
        return Err(TemplateError {
            part: "body",
            message: format!("must be 1-{MAX_BODY_CHARS} characters"),
        });
    }
    let env = environment();
    check_part(&env, event, "subject", subject)?;
    check_part(&env, event, "body", body)
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// Renders a checked template with the notification's variables and the recipient's name.
pub fn render(
    subject: &str,
    body: &str,
    variables: &BTreeMap<String, String>,
    recipient_name: &str,
) -> Result<Rendered, String> {
    let env = environment();
    let mut ctx = variables.clone();
    ctx.insert("recipient_name".into(), recipient_name.to_string());
    let one = |src: &str| {
        env.render_str(src, &ctx)
            .map(|s| s.trim().to_string())
            .map_err(|e| e.to_string())
    };
    Ok(Rendered {
        subject: one(subject)?,
        body: one(body)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalogue::event;

    #[test]
    fn a_variable_the_event_does_not_carry_is_refused_at_registration() {
        let e = event("materials_review.passed").unwrap();
        let err = check(e, "{{ enterprise_name }}", "得分 {{ materials_scor }}").unwrap_err();
        assert_eq!(err.part, "body");
        assert!(err.message.contains("materials_scor"), "{}", err.message);
        assert!(check(e, "{{ enterprise_name }}", "得分 {{ materials_score }}").is_ok());
        // Loop variables and `set` are the template's own, not the event's.
        assert!(
            check(
                e,
                "",
                "{% set s = materials_score %}{% for c in enterprise_name %}{{ c }}{% endfor %}{{ s }}"
            )
            .is_ok()
        );
    }

    #[test]
    fn syntax_errors_and_oversize_parts_are_refused() {
        let e = event("materials_review.passed").unwrap();
        assert_eq!(check(e, "{{ x", "b").unwrap_err().part, "subject");
        assert_eq!(check(e, "a", "{% if %}").unwrap_err().part, "body");
        assert_eq!(check(e, "a\nb", "b").unwrap_err().part, "subject");
        assert_eq!(check(e, "a", " ").unwrap_err().part, "body");
    }

    #[test]
    fn renders_chinese_text_without_escaping() {
        let vars = BTreeMap::from([
            (
                "enterprise_name".to_string(),
                "重庆某某机械有限公司 <A&B>".to_string(),
            ),
            ("materials_score".to_string(), "512.50".to_string()),
        ]);
        let r = render(
            "{{ enterprise_name }}",
            "{{ recipient_name }}：得分{{ materials_score }}分",
            &vars,
            "张三",
        )
        .unwrap();
        assert_eq!(r.subject, "重庆某某机械有限公司 <A&B>");
        assert_eq!(r.body, "张三：得分512.50分");
        assert!(render("{{ nope }}", "x", &vars, "张三").is_err());
    }
}
