//! The privacy notice: what the company's policy makes this agent collect and how often, in plain
//! words, derived from the policy itself so the notice can never drift from what is captured.

use serde::Serialize;
use worktrail_shared::policy::Policy;

/// One kind of data and how it is collected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Collected {
    /// What (e.g. "Screenshots").
    pub what: String,
    /// How and how often, or that it is not collected.
    pub detail: String,
    /// Whether it is collected at all.
    pub collected: bool,
}

fn item(what: &str, collected: bool, detail: String) -> Collected {
    Collected { what: what.into(), detail, collected }
}

fn every(secs: u32) -> String {
    match secs {
        0 | 1 => "every second".into(),
        s if s % 60 == 0 && s >= 120 => format!("every {} minutes", s / 60),
        60 => "every minute".into(),
        s => format!("every {s} seconds"),
    }
}

/// The notice for `policy`, in a fixed order.
pub fn collected(policy: &Policy) -> Vec<Collected> {
    let p = policy;
    let rules = match p.privacy_rules.len() {
        0 => String::new(),
        1 => " One privacy rule drops or hides matching apps, titles or sites first.".into(),
        n => format!(" {n} privacy rules drop or hide matching apps, titles or sites first."),
    };
    let shots = &p.screenshots;
    let mut out = vec![
        item(
            "Applications and window titles",
            true,
            format!(
                "The active application and its window title, {}.{rules}",
                every(p.sample_interval_secs)
            ),
        ),
        item(
            "Websites",
            true,
            if p.websites.full_url {
                "The full address (URL) of the active browser tab.".into()
            } else {
                "The domain of the active browser tab (for example docs.rs), not the full address."
                    .into()
            },
        ),
        item(
            "Idle time",
            true,
            format!(
                "Time without keyboard or mouse input; after {} it counts as idle.",
                every(p.idle_threshold_secs).trim_start_matches("every ")
            ),
        ),
        item(
            "Activity level",
            true,
            "How many seconds per minute had keyboard or mouse input. What you type is never read."
                .into(),
        ),
    ];
    out.push(if shots.enabled {
        item(
            "Screenshots",
            true,
            format!(
                "Every monitor, once at a random moment {}, scaled to at most {} pixels wide{}.",
                every(shots.interval_secs),
                shots.max_width,
                if shots.blur { " and blurred on this computer before storing" } else { "" }
            ),
        )
    } else {
        item("Screenshots", false, "Not taken.".into())
    });
    out.push(item(
        "When",
        true,
        if p.schedule.is_empty() {
            "Whenever this agent runs and you are signed in.".into()
        } else {
            format!(
                "Only inside your company's work schedule ({} weekly windows).",
                p.schedule.len()
            )
        },
    ));
    out.push(item(
        "Sending",
        true,
        format!(
            "Kept on this computer first, then sent to your company's Worktrail server {}.",
            every(p.sync_interval_secs)
        ),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use worktrail_shared::policy::ScreenshotPolicy;

    fn detail<'a>(items: &'a [Collected], what: &str) -> &'a Collected {
        items.iter().find(|c| c.what == what).unwrap()
    }

    #[test]
    fn the_notice_follows_the_screenshot_and_website_settings() {
        let mut p = Policy::default();
        let items = collected(&p);
        let shots = detail(&items, "Screenshots");
        assert!(shots.collected);
        assert!(shots.detail.contains("every 10 minutes"), "{}", shots.detail);
        assert!(shots.detail.contains("1280"));
        assert!(!shots.detail.contains("blurred"));
        assert!(detail(&items, "Websites").detail.contains("not the full address"));

        p.screenshots = ScreenshotPolicy { blur: true, interval_secs: 300, ..Default::default() };
        p.websites.full_url = true;
        let items = collected(&p);
        assert!(detail(&items, "Screenshots").detail.contains("every 5 minutes"));
        assert!(detail(&items, "Screenshots").detail.contains("blurred"));
        assert!(detail(&items, "Websites").detail.contains("full address"));

        p.screenshots.enabled = false;
        let off = collected(&p);
        assert!(!detail(&off, "Screenshots").collected);
        assert_eq!(detail(&off, "Screenshots").detail, "Not taken.");
    }

    #[test]
    fn intervals_read_as_people_say_them() {
        assert_eq!(every(1), "every second");
        assert_eq!(every(60), "every minute");
        assert_eq!(every(90), "every 90 seconds");
        assert_eq!(every(600), "every 10 minutes");
        let idle = detail(&collected(&Policy::default()), "Idle time").detail.clone();
        assert!(idle.contains("after 5 minutes"), "{idle}");
    }
}
