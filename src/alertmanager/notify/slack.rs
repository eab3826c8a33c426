//! Slack's incoming-webhook message (Alertmanager's `notify/slack`): one attachment whose
//! texts come from the configured templates; the title is cut at 1024 characters. Only 5xx
//! is retried.

use super::{HttpRequest, Notification, NotifyError, Renderer, truncate_runes};
use crate::config::alertmanager::receivers::Slack;
use crate::model::gojson::{self, Object};

const MAX_TITLE_RUNES: usize = 1024;

pub fn render(s: &Slack, n: &Notification<'_>, r: &Renderer<'_>) -> Result<HttpRequest, NotifyError> {
    let (title, cut) = truncate_runes(&r.text("title", &s.title)?, MAX_TITLE_RUNES);
    if cut {
        tracing::warn!(
            receiver = n.receiver,
            group = n.group_key,
            max_runes = MAX_TITLE_RUNES,
            "Truncated title"
        );
    }
    let mut fields = Vec::new();
    for f in &s.fields {
        fields.push(
            Object::new()
                .str_opt("title", &r.text("fields.title", &f.title)?)
                .str_opt("value", &r.text("fields.value", &f.value)?)
                .bool("short", f.short.unwrap_or(s.short_fields))
                .finish(),
        );
    }
    let mut actions = Vec::new();
    for a in &s.actions {
        let mut o = Object::new()
            .str_opt("type", &r.text("actions.type", &a.kind)?)
            .str_opt("text", &r.text("actions.text", &a.text)?)
            .str_opt("url", &r.text("actions.url", &a.url)?)
            .str_opt("style", &r.text("actions.style", &a.style)?)
            .str_opt("name", &r.text("actions.name", &a.name)?)
            .str_opt("value", &r.text("actions.value", &a.value)?);
        if let Some(c) = &a.confirm {
            let confirm = Object::new()
                .str_opt("text", &r.text("actions.confirm.text", &c.text)?)
                .str_opt("title", &r.text("actions.confirm.title", &c.title)?)
                .str_opt("ok_text", &r.text("actions.confirm.ok_text", &c.ok_text)?)
                .str_opt("dismiss_text", &r.text("actions.confirm.dismiss_text", &c.dismiss_text)?)
                .finish();
            o = o.raw("confirm", &confirm);
        }
        actions.push(o.finish());
    }
    let mrkdwn_in = if s.mrkdwn_in.is_empty() { String::new() } else { gojson::string_array(&s.mrkdwn_in) };
    let mut attachment = Object::new()
        .str_opt("title", &title)
        .str_opt("title_link", &r.text("title_link", &s.title_link)?)
        .str_opt("pretext", &r.text("pretext", &s.pretext)?)
        .str("text", &r.text("text", &s.text)?)
        .str("fallback", &r.text("fallback", &s.fallback)?)
        .str("callback_id", &r.text("callback_id", &s.callback_id)?)
        .array_opt("fields", &fields)
        .array_opt("actions", &actions)
        .str_opt("image_url", &r.text("image_url", &s.image_url)?)
        .str_opt("thumb_url", &r.text("thumb_url", &s.thumb_url)?)
        .str("footer", &r.text("footer", &s.footer)?)
        .str_opt("color", &r.text("color", &s.color)?);
    if !mrkdwn_in.is_empty() {
        attachment = attachment.raw("mrkdwn_in", &mrkdwn_in);
    }
    let body = Object::new()
        .str_opt("channel", &r.text("channel", &s.channel)?)
        .str_opt("username", &r.text("username", &s.username)?)
        .str_opt("icon_emoji", &r.text("icon_emoji", &s.icon_emoji)?)
        .str_opt("icon_url", &r.text("icon_url", &s.icon_url)?)
        .true_opt("link_names", s.link_names)
        .raw("attachments", &format!("[{}]", attachment.finish()))
        .finish();
    let url = s.api_url.read(true).map_err(NotifyError::Permanent)?;
    Ok(HttpRequest::post_json(url, gojson::encoded(body), &[]))
}
