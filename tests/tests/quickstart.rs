//! Runs the README's quick start, command by command, against real processes: once through mesh-master's embedded
//! gateway alone, once through mesh-ingress fed by a master without a gateway. Ports are swapped for free ones.

mod common;

use common::{Master, Proc, bin, bin_dir, free_port};
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

/// One `$ command` of a console block and the output the README shows for it.
#[derive(Debug)]
struct Step {
    command: String,
    expected: String,
}

/// Parses the console blocks between the quickstart markers.
fn steps(readme: &str) -> Vec<Step> {
    let begin = readme
        .find("<!-- quickstart:begin -->")
        .expect("quickstart:begin marker");
    let end = readme
        .find("<!-- quickstart:end -->")
        .expect("quickstart:end marker");
    let mut steps = Vec::new();
    let mut in_block = false;
    let mut lines = readme[begin..end].lines().peekable();
    while let Some(line) = lines.next() {
        if !in_block {
            in_block = line.trim() == "```console";
            continue;
        }
        if line.trim() == "```" {
            in_block = false;
            continue;
        }
        let Some(first) = line.strip_prefix("$ ") else {
            panic!("output without a command in the README: {line:?}");
        };
        let mut command = first.to_string();
        // A command continues while a single quote is open or a heredoc is unterminated.
        let heredoc = first
            .split("<<'")
            .nth(1)
            .and_then(|t| t.split('\'').next())
            .map(str::to_string);
        if let Some(term) = heredoc {
            for l in lines.by_ref() {
                command.push('\n');
                command.push_str(l);
                if l == term {
                    break;
                }
            }
        } else {
            while command.matches('\'').count() % 2 == 1 {
                let l = lines
                    .next()
                    .expect("unterminated quote in a README command");
                command.push('\n');
                command.push_str(l);
            }
        }
        let mut expected = Vec::new();
        while let Some(l) = lines.peek() {
            if l.starts_with("$ ") || l.trim() == "```" {
                break;
            }
            expected.push(lines.next().unwrap_or_default().to_string());
        }
        steps.push(Step {
            command,
            expected: expected.join("\n"),
        });
    }
    steps
}

fn normalize(text: &str) -> String {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut l = line.trim_end().to_string();
        if let Some(i) = l.find("curl/") {
            let digits = l[i + 5..]
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(l.len() - i - 5);
            if digits > 0 {
                l.replace_range(i..i + 5 + digits, "curl/X");
            }
        }
        out.push(l);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

async fn run_quick_start(master: &Master, dir: &Path) {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README");
    let gateway = free_port().to_string();
    let backends: Vec<String> = (0..3).map(|_| free_port().to_string()).collect();
    let swap = |s: &str| {
        s.replace("10080", &gateway)
            .replace("9095", &backends[0])
            .replace("9096", &backends[1])
            .replace("9097", &backends[2])
    };
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut background: Vec<Proc> = Vec::new();
    let all = steps(&readme);
    assert!(all.len() >= 10, "the quick start lost its steps: {all:?}");
    for (i, step) in all.iter().enumerate() {
        let command = swap(&step.command);
        let expected = normalize(&swap(&step.expected));
        if let Some(cmd) = command.strip_suffix('&') {
            let args = vec!["-c".to_string(), format!("PATH={path} exec {cmd}")];
            background.push(Proc::spawn(
                &format!("step-{i}"),
                Path::new("/bin/bash"),
                &args,
                dir,
            ));
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        // The proxies apply a change a moment after the master commits it: curl steps are retried until they match.
        let retry = command.starts_with("curl");
        let deadline = Instant::now() + Duration::from_secs(if retry { 15 } else { 0 });
        loop {
            let out = Command::new("/bin/bash")
                .arg("-c")
                .arg(&command)
                .current_dir(dir)
                .env("PATH", &path)
                .env("MESHCTL_SERVER", &master.client)
                .output()
                .expect("run bash");
            let stdout = normalize(&String::from_utf8_lossy(&out.stdout));
            let stderr = String::from_utf8_lossy(&out.stderr);
            let combined = normalize(&format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                stderr
            ));
            let matched = out.status.success() && (stdout == expected || combined == expected);
            if matched {
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "quick start step {i} failed: {command}\nstatus: {}\nexpected:\n{expected}\ngot stdout:\n{stdout}\nstderr:\n{stderr}\nmaster log:\n{}",
                    out.status,
                    master.proc.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_start_through_mesh_master_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = Master::start(dir.path(), &[]).await;
    run_quick_start(&master, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_start_through_mesh_ingress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = Master::start(dir.path(), &["--no-gateway"]).await;
    let args = vec![
        "--master".to_string(),
        master.client.clone(),
        "--node-id".to_string(),
        "ingress-qs".to_string(),
    ];
    let _ingress = Proc::spawn("mesh-ingress", &bin("mesh-ingress"), &args, dir.path());
    run_quick_start(&master, dir.path()).await;
}

#[test]
fn readme_parser_keeps_multi_line_commands_whole() {
    let text = "<!-- quickstart:begin -->\n```console\n$ echo '\na: 1' | meshctl object create\ncreated X a\n$ cat > f <<'Y'\nb\nY\n```\n<!-- quickstart:end -->";
    let s = steps(text);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].command, "echo '\na: 1' | meshctl object create");
    assert_eq!(s[0].expected, "created X a");
    assert_eq!(s[1].command, "cat > f <<'Y'\nb\nY");
    assert_eq!(
        normalize("User-Agent:[curl/8.5.0]]  \n\n"),
        "User-Agent:[curl/X]]"
    );
}
