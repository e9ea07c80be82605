//! What a website *is* to the agent: the browser families it knows by their window's application
//! name, the domain (and, when the policy allows, the full URL) of a tab's URL, and the domain a
//! window title shows when there is no extension.
//!
//! Invariants: only `http`/`https` URLs are websites (browser pages, files and extension pages are
//! not); credentials and fragments never survive; a domain is a lower-case host name without port.

use url::Url;

/// A family of browsers that share one extension build and one way of naming their windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Chromium, Google Chrome, Edge, Brave, Vivaldi, Opera.
    Chromium,
    /// Firefox and its forks.
    Firefox,
}

const CHROMIUM_APPS: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "chrome",
    "microsoft-edge",
    "msedge",
    "brave",
    "brave-browser",
    "vivaldi",
    "vivaldi-stable",
    "opera",
];
const FIREFOX_APPS: &[&str] =
    &["firefox", "firefox-esr", "navigator", "librewolf", "waterfox", "floorp", "zen"];

/// The browser family of a window, from its application name or executable's file name.
pub fn family_of(app: &str, exe: Option<&str>) -> Option<Family> {
    let norm = |s: &str| {
        let base = s.rsplit(['/', '\\']).next().unwrap_or(s).to_lowercase();
        base.strip_suffix(".exe").map(str::to_owned).unwrap_or(base)
    };
    [Some(app), exe].into_iter().flatten().map(norm).find_map(|name| {
        if CHROMIUM_APPS.contains(&name.as_str()) {
            Some(Family::Chromium)
        } else if FIREFOX_APPS.contains(&name.as_str()) {
            Some(Family::Firefox)
        } else {
            None
        }
    })
}

/// A tab's URL reduced to what may be kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteUrl {
    /// Lower-case host name, without port.
    pub domain: String,
    /// Scheme, host, port, path and query; no credentials, no fragment.
    pub full: String,
}

/// The site of a tab URL, or `None` when it is not a website (`about:`, `chrome://`, `file:` …).
pub fn parse_url(raw: &str) -> Option<SiteUrl> {
    let mut url = Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let domain = url.host_str()?.trim_end_matches('.').to_lowercase();
    if domain.is_empty() {
        return None;
    }
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_fragment(None);
    Some(SiteUrl { domain, full: url.into() })
}

/// The browser's name that windows append to the page title.
const TITLE_SUFFIXES: &[&str] = &[
    " - Chromium",
    " - Google Chrome",
    " - Microsoft Edge",
    " - Brave",
    " - Vivaldi",
    " - Opera",
    " — Mozilla Firefox",
    " - Mozilla Firefox",
    " — Firefox",
    " - Firefox",
];

/// The page title inside a browser window's title (the browser's name removed).
pub fn page_title(window_title: &str) -> &str {
    TITLE_SUFFIXES.iter().find_map(|s| window_title.strip_suffix(s)).unwrap_or(window_title).trim()
}

/// Endings of file names that browsers show as titles (a PDF, an image) and that are not sites
/// unless a scheme or a path says so.
const FILE_ENDINGS: &[&str] = &[
    "pdf", "txt", "png", "jpg", "jpeg", "gif", "svg", "webp", "html", "htm", "md", "rs", "py",
    "js", "json", "xml", "csv", "doc", "docx", "xls", "xlsx", "zip", "sh",
];

fn looks_like_host(token: &str) -> Option<String> {
    let token = token.trim_matches(|c: char| !c.is_alphanumeric());
    let (rest, has_scheme) = token.split_once("://").map_or((token, false), |(_, r)| (r, true));
    let has_path = rest.contains('/');
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split(':').next()?.to_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let tld = labels.last()?;
    let ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && (2..=24).contains(&tld.len())
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && (has_scheme || has_path || !FILE_ENDINGS.contains(tld));
    ok.then_some(host)
}

/// The domain a browser window's title shows, if it shows one (a page without a `<title>`, or a
/// browser set to show the URL in the title). A guess: records made from it are marked as such.
pub fn domain_in_title(window_title: &str) -> Option<String> {
    page_title(window_title)
        .split(|c: char| c.is_whitespace() || matches!(c, '|' | '(' | ')' | '[' | ']' | '—' | '–'))
        .find_map(looks_like_host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_known_by_window_class_or_executable() {
        assert_eq!(family_of("Chromium", None), Some(Family::Chromium));
        assert_eq!(family_of("Google-chrome", None), Some(Family::Chromium));
        assert_eq!(
            family_of("Navigator", Some("/usr/lib/firefox-esr/firefox-esr")),
            Some(Family::Firefox)
        );
        assert_eq!(
            family_of("Whatever", Some("C:\\Program Files\\Mozilla\\firefox.exe")),
            Some(Family::Firefox)
        );
        assert_eq!(family_of("XTerm", Some("/usr/bin/xterm")), None);
    }

    #[test]
    fn a_url_keeps_its_host_as_the_domain_and_loses_credentials_and_fragment() {
        let s = parse_url("https://user:pw@Docs.Example.COM:8443/a/b?q=secret#frag").unwrap();
        assert_eq!(s.domain, "docs.example.com");
        assert_eq!(s.full, "https://docs.example.com:8443/a/b?q=secret");
        assert_eq!(parse_url("http://alpha.localhost:4000/x").unwrap().domain, "alpha.localhost");
        assert_eq!(parse_url("http://[::1]:80/").unwrap().domain, "[::1]");
    }

    #[test]
    fn browser_pages_files_and_garbage_are_not_websites() {
        for raw in [
            "about:blank",
            "chrome://settings",
            "file:///etc/passwd",
            "chrome-extension://abc/x.html",
            "moz-extension://u/x",
            "",
            "not a url",
        ] {
            assert_eq!(parse_url(raw), None, "{raw}");
        }
    }

    #[test]
    fn a_title_that_shows_a_host_gives_its_domain_and_ordinary_titles_give_none() {
        assert_eq!(
            domain_in_title("github.com/rust-lang/rust - Chromium").as_deref(),
            Some("github.com")
        );
        assert_eq!(
            domain_in_title("Inbox (3) | mail.example.org — Mozilla Firefox").as_deref(),
            Some("mail.example.org")
        );
        assert_eq!(
            domain_in_title("https://news.ycombinator.com/item?id=1 - Chromium").as_deref(),
            Some("news.ycombinator.com")
        );
        assert_eq!(
            domain_in_title("alpha.localhost:4317/page?x=1 - Chromium").as_deref(),
            Some("alpha.localhost")
        );
        for t in [
            "Quarterly report v1.2 - Chromium",
            "main.rs - Visual Studio Code",
            "report.pdf - Chromium",
            "New Tab - Chromium",
            "e.g. this",
            "",
        ] {
            assert_eq!(domain_in_title(t), None, "{t}");
        }
    }

    #[test]
    fn the_browser_name_is_cut_from_the_window_title() {
        assert_eq!(page_title("Alpha page - Chromium"), "Alpha page");
        assert_eq!(page_title("Beta — Mozilla Firefox"), "Beta");
        assert_eq!(page_title("plain"), "plain");
    }
}
