//! Progress bars on stderr (indicatif), for a person at a terminal only: never under systemd,
//! cron or a pipe, and not with `-q`. Everywhere else a bar is hidden and draws nothing.

use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Called once at start-up: bars are drawn only when stderr is a terminal and the user did not
/// ask for less output.
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// A bar of `len` steps named `what`; hidden unless [`enable`]d.
pub fn bar(len: usize, what: &str) -> ProgressBar {
    if !ENABLED.load(Ordering::Relaxed) || len == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}
