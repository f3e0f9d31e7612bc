//! The chart page in headless Chromium: after its script ran, the DOM holds one bar per code and
//! payer with the yield the JSON API serves, and the labels. The key travels in the URL fragment.

use std::time::Duration;

use claimledger_sessions_api::auth::Role;

use crate::helpers::spawn_app;
use crate::known::known_chain;

/// The Chromium binary: `CHROMIUM` or the Debian package's (`deploy/local-stack.sh` installs it).
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

/// The DOM of `url` after its scripts ran (virtual time lets the fetch finish before the dump).
async fn rendered_dom(url: &str) -> anyhow::Result<String> {
    let profile =
        std::env::temp_dir().join(format!("claimledger-chromium-{}", uuid::Uuid::new_v4()));
    let run = tokio::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .map_err(|_| anyhow::anyhow!("chromium did not finish within 120 s"))?
        .map_err(|error| {
            anyhow::anyhow!(
                "running {} failed ({error}); install it with deploy/local-stack.sh",
                chromium()
            )
        })?;
    let _ = std::fs::remove_dir_all(&profile);
    anyhow::ensure!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// The `name="..."` attribute values of every element whose tag starts with `<tag`.
fn attributes(dom: &str, tag: &str, name: &str) -> Vec<String> {
    dom.split(&format!("<{tag} "))
        .skip(1)
        .filter_map(|element| {
            let element = element.split('>').next()?;
            let start = element.find(&format!("{name}=\""))? + name.len() + 2;
            let end = element[start..].find('"')? + start;
            Some(element[start..end].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_chart_page_draws_a_bar_per_code_and_payer_from_the_api() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let data = known_chain();
    data.write(&app.env.db).await?;
    let key = app.key(data.chain, Role::Analyst, None).await?;

    let page = app.get("/charts", None, None).await;
    assert_eq!(page.status, reqwest::StatusCode::OK);
    assert!(page.content_type().starts_with("text/html"));
    assert!(
        !page.text.contains("src=\"http"),
        "the page loads nothing from elsewhere"
    );
    let policy = page.headers["content-security-policy"].to_str()?;
    assert!(policy.contains("connect-src 'self'"), "{policy}");

    let dom = rendered_dom(&format!(
        "{}/charts#key={key}&from=2026-01-01&to=2026-02-28",
        app.address
    ))
    .await?;
    assert!(
        dom.contains("data-state=\"ready\""),
        "the script did not finish: {dom}"
    );
    let codes = attributes(&dom, "rect", "data-code");
    let payers = attributes(&dom, "rect", "data-payer");
    let values = attributes(&dom, "rect", "data-value");
    let mut bars: Vec<(String, String, String)> = codes
        .into_iter()
        .zip(payers)
        .zip(values)
        .map(|((code, payer), value)| (code, payer, value))
        .collect();
    bars.sort();
    // The yields worked out in `known_chain`: 5000/3, 9600/3, 18000/6 and 0/3 cents per unit.
    assert_eq!(
        bars,
        vec![
            ("97124".into(), "Massage Only".into(), "3200".into()),
            ("97124".into(), "Medicare-like".into(), "1667".into()),
            ("97140".into(), "Massage Only".into(), "0".into()),
            ("97140".into(), "Medicare-like".into(), "3000".into()),
        ]
    );
    for label in [
        "$32.00",
        "$16.67",
        "$30.00",
        "$0.00",
        ">97124<",
        ">97140<",
        "Medicare-like",
    ] {
        assert!(
            dom.contains(label),
            "{label} missing from the rendered page"
        );
    }
    // The server never saw the key in a URL: it was only in the fragment.
    assert!(!dom.contains(&key), "the key stays out of the document");

    let no_key = rendered_dom(&format!("{}/charts", app.address)).await?;
    assert!(no_key.contains("data-state=\"error\""));
    app.stop().await
}
