//! Runs the built `claimledger` binary: the `units` subcommand's table, JSON, tie-break flag and
//! its refusals of bad arguments.

use std::process::{Command, Output};

fn claimledger(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_claimledger"))
        .args(args)
        .output()
        .expect("run claimledger")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8 stderr")
}

#[test]
fn given_example_3_when_run_with_cms_then_the_table_shows_2_plus_1_units_and_why() {
    let output = claimledger(&["units", "97110=33", "97140=7", "--method", "cms"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("Method: CMS total time\n"), "{text}");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|line| line.starts_with("97") || line.starts_with("TOTAL"))
        .map(|line| line.split_whitespace().take(3).collect())
        .collect();
    assert_eq!(
        rows,
        [
            ["97110", "33", "2"],
            ["97140", "7", "1"],
            ["TOTAL", "40", "3"]
        ]
    );
    assert!(text.contains("3 leftover min, which ranked #2"), "{text}");
    assert!(
        text.contains("CMS total time: 40 timed min allow 3 units in total"),
        "{text}"
    );
}

#[test]
fn given_example_3_when_run_with_ama_then_the_7_minute_code_gets_nothing() {
    let output = claimledger(&["units", "97110=33", "97140=7", "--method", "ama"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(
            "97140: 7 min is under the 8-minute midpoint of a unit, so 0 units (AMA per code)"
        ),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|line| line.split_whitespace().take(3).eq(["TOTAL", "40", "2"])),
        "{text}"
    );
}

#[test]
fn given_json_when_run_then_units_total_and_structured_reasons_are_printed() {
    let output = claimledger(&[
        "units", "97110=33", "97140=7", "97010=10", "--method", "cms", "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("valid JSON");
    assert_eq!(report["method"], "cms_total_time");
    assert_eq!(
        (
            report["total_timed_minutes"].as_u64(),
            report["total_units"].as_u64()
        ),
        (Some(40), Some(4))
    );
    let codes = report["codes"].as_array().expect("codes");
    let summary: Vec<(String, u64, bool)> = codes
        .iter()
        .map(|code| {
            (
                code["code"].as_str().unwrap_or_default().to_owned(),
                code["units"].as_u64().unwrap_or(99),
                code["timed"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("97110".to_owned(), 2, true),
            ("97140".to_owned(), 1, true),
            ("97010".to_owned(), 1, false)
        ]
    );
    assert_eq!(codes[1]["reason"]["kind"], "total_time");
    assert_eq!(codes[1]["reason"]["leftover_earned_unit"], true);
    assert_eq!(codes[2]["reason"]["kind"], "untimed");
    assert!(report["tie"].is_null());
}

#[test]
fn given_a_tie_when_primary_is_given_then_the_primary_wins_and_json_names_the_rule() {
    let without = claimledger(&["units", "97112=20", "97110=20", "--method", "cms", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&without)).expect("valid JSON");
    assert_eq!(report["tie"]["winners"], serde_json::json!(["97110"]));
    assert_eq!(report["tie"]["rule"], "lower_code_number");

    let with = claimledger(&[
        "units",
        "97112=20",
        "97110=20",
        "--method",
        "cms",
        "--primary",
        "97112",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&with)).expect("valid JSON");
    assert_eq!(report["tie"]["winners"], serde_json::json!(["97112"]));
    assert_eq!(report["tie"]["rule"], "clinician_primary");
}

#[test]
fn given_bad_arguments_when_run_then_it_fails_with_a_message_naming_the_argument() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["units", "97116=10", "--method", "cms"],
            "\"97116\" is not a procedure code ClaimLedger bills",
        ),
        (
            &["units", "97110=ten", "--method", "cms"],
            "minutes for 97110: \"ten\" is not a whole number of minutes",
        ),
        (
            &["units", "97110:33", "--method", "cms"],
            "missing '=': write CODE=MINUTES",
        ),
        (
            &["units", "97110=33", "97140=5", "97110=4", "--method", "cms"],
            "argument 3 repeats code 97110 (already given as argument 1)",
        ),
        (
            &["units", "97110=33", "--method", "cms", "--primary", "97140"],
            "--primary 97140: the code is not among the CODE=MINUTES arguments",
        ),
        (&["units", "97110=33"], "--method <METHOD>"),
    ];
    for (args, message) in cases {
        let output = claimledger(args);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(stdout(&output).is_empty(), "{args:?} printed to stdout");
    }
}

/// A fresh database for one test from the workspace harness, dropped when the guard goes.
struct Database {
    url: String,
    runtime: tokio::runtime::Runtime,
    env: Option<integration_tests::TestEnv>,
}

impl Database {
    fn create() -> Database {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let env = runtime
            .block_on(integration_tests::TestEnv::start())
            .expect("the test's database");
        // The same server and options as the harness's URL, naming the test's database.
        let base = &env.endpoints().database_url;
        let (address, options) = base.split_once('?').unwrap_or((base.as_str(), ""));
        let server = address
            .rsplit_once('/')
            .map_or(address, |(server, _)| server);
        let options = if options.is_empty() {
            String::new()
        } else {
            format!("?{options}")
        };
        Database {
            url: format!("{server}/{}{options}", env.database_name()),
            runtime,
            env: Some(env),
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(env) = self.env.take() {
            let _ = self.runtime.block_on(env.cleanup());
        }
    }
}

fn claimledger_on(database: &Database, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_claimledger"))
        .args(args)
        .env("DATABASE_URL", &database.url)
        .output()
        .expect("run claimledger")
}

#[test]
fn given_a_chain_when_keys_are_created_listed_and_revoked_then_the_list_shows_each_state() {
    let database = Database::create();
    let created = claimledger_on(&database, &["keys", "create", "--chain-name", "CLI chain"]);
    assert!(created.status.success(), "{}", stderr(&created));
    let text = stdout(&created);
    let chain = text
        .lines()
        .find_map(|line| line.strip_prefix("chain: "))
        .expect("the chain id")
        .to_owned();
    let expiring = claimledger_on(
        &database,
        &[
            "keys",
            "create",
            "--chain",
            &chain,
            "--role",
            "analyst",
            "--label",
            "auditor",
            "--expires-at",
            "2099-01-01T00:00:00Z",
        ],
    );
    assert!(expiring.status.success(), "{}", stderr(&expiring));
    let analyst = stdout(&expiring)
        .lines()
        .find_map(|line| line.strip_prefix("key id: "))
        .expect("the key id")
        .to_owned();

    let revoked = claimledger_on(
        &database,
        &["keys", "revoke", "--chain", &chain, "--id", &analyst],
    );
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert!(stdout(&revoked).contains("revoked"), "{}", stdout(&revoked));

    let listed = claimledger_on(&database, &["keys", "list", "--chain", &chain]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let rows: Vec<Vec<String>> = stdout(&listed)
        .lines()
        .skip(1)
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][1], "admin");
    assert_eq!(rows[0][5], "active");
    assert_eq!(rows[1][0], analyst);
    assert_eq!(rows[1][3], "auditor");
    assert!(rows[1][5].starts_with("revoked "), "{rows:?}");

    let unknown = claimledger_on(
        &database,
        &["keys", "revoke", "--chain", &chain, "--id", &chain],
    );
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("has no key"),
        "{}",
        stderr(&unknown)
    );
    let past = claimledger_on(
        &database,
        &[
            "keys",
            "create",
            "--chain",
            &chain,
            "--expires-at",
            "2001-01-01T00:00:00Z",
        ],
    );
    assert!(!past.status.success());
    assert!(stderr(&past).contains("--expires-at"), "{}", stderr(&past));
}
