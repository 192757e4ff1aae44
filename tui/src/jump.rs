//! `:` jumps: a view name or an asset key, with tab completion (the common prefix of what matches;
//! the candidates on the bottom line when there are several).

use crate::app::{App, Detail, Effect, Input, SortBy, Tab};

/// The view names `:` takes.
const VIEWS: [&str; 6] = [
    "assets",
    "lineage",
    "runs",
    "backfills",
    "schedules",
    "quit",
];

impl App {
    /// Tab in the `:` line: completes `text` to the longest prefix shared by every view name and
    /// asset key starting with it, and lists them when there are several.
    pub(crate) fn complete(&mut self, text: String) {
        let mut matches: Vec<String> = VIEWS
            .iter()
            .map(|v| v.to_string())
            .chain(self.snapshot.assets.iter().map(|a| a.key.clone()))
            .filter(|c| c.starts_with(&text))
            .collect();
        matches.sort();
        matches.dedup();
        let done = match matches.as_slice() {
            [] => {
                self.message = Some(format!("no view or asset starts with '{text}'"));
                text
            }
            [one] => one.clone(),
            many => {
                let shown: Vec<&str> = many.iter().take(6).map(String::as_str).collect();
                let more = many.len().saturating_sub(6);
                self.message = Some(format!(
                    "{}{}",
                    shown.join("  "),
                    if more > 0 {
                        format!("  … {more} more")
                    } else {
                        String::new()
                    }
                ));
                common_prefix(many)
            }
        };
        self.input = Input::Command(done);
    }

    /// `:assets`, `:lineage`, `:runs`, `:q`; or an asset key, which opens it.
    pub(crate) fn command(&mut self, text: &str) -> Option<Effect> {
        match text {
            "" => None,
            "q" | "quit" => Some(Effect::Quit),
            "a" | "assets" => {
                self.switch(Tab::Assets);
                None
            }
            "l" | "lineage" => {
                self.switch(Tab::Lineage);
                None
            }
            _ if self.tab == Tab::Lineage && self.snapshot.assets.iter().any(|a| a.key == text) => {
                // Jump: the asset becomes the center of the lineage.
                self.lineage = crate::lineage::LineageState {
                    center: Some(text.to_string()),
                    ..Default::default()
                };
                None
            }
            "r" | "runs" => {
                self.switch(Tab::Runs);
                None
            }
            "b" | "backfills" | "schedules" => {
                self.switch(Tab::Backfills);
                None
            }
            key => match self.snapshot.assets.iter().position(|a| a.key == key) {
                Some(_) => {
                    self.filter.clear();
                    self.sort = SortBy::Graph;
                    self.descending = false;
                    self.asset_row = self.visible_assets().iter().position(|a| a.key == key)?;
                    self.tab = Tab::Assets;
                    self.detail = Some(Detail::Asset(key.to_string()));
                    Some(Effect::LoadAsset(key.to_string()))
                }
                None => {
                    self.message = Some(format!(
                        "no view or asset '{key}' (try :assets, :lineage, :runs, :backfills)"
                    ));
                    None
                }
            },
        }
    }
}

fn common_prefix(words: &[String]) -> String {
    let first = &words[0];
    let mut end = first.len();
    for w in &words[1..] {
        end = first
            .char_indices()
            .zip(w.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map(|((i, a), _)| i + a.len_utf8())
            .unwrap_or(0)
            .min(end);
    }
    first[..end].to_string()
}
