//! `deepfake-guard eval` and `features` on bad clip lists: a clear error naming the line, never a panic or
//! a silent partial result.

mod common;

use common::{guard, path_str, tempdir};

#[test]
fn bad_clip_lists_are_refused_with_the_line_and_the_reason() {
    let dir = tempdir();
    let clip = dir.path().join("a.mp4");
    std::fs::write(&clip, b"not media").unwrap();
    let cases = [
        ("missing.csv", "nothere.mp4,0\n", "nothere.mp4 not found"),
        ("label.csv", "a.mp4,maybe\n", "label `maybe`"),
        ("offset.csv", "a.mp4,1,soon\n", "offset_ms `soon`"),
        ("columns.csv", "a.mp4\n", "expected `path,label"),
        ("empty.csv", "# nothing\n\n", "no clips listed"),
    ];
    for (name, text, want) in cases {
        let list = dir.path().join(name);
        std::fs::write(&list, text).unwrap();
        for cmd in ["eval", "features"] {
            let mut args = vec![cmd, path_str(&list)];
            let out = dir.path().join("feat");
            if cmd == "features" {
                args.extend(["--out", path_str(&out)]);
            }
            let (ok, _, stderr) = guard(&args);
            assert!(!ok, "{cmd} {name} should fail");
            assert!(stderr.contains(want), "{cmd} {name}: {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
    // Only a file that is not media: nothing to evaluate, and the warning names it.
    let list = dir.path().join("notmedia.csv");
    std::fs::write(&list, "path,label\na.mp4,genuine\n").unwrap();
    let (ok, _, stderr) = guard(&["eval", path_str(&list), "--jobs", "1"]);
    assert!(!ok && stderr.contains("a.mp4") && stderr.contains("no clip could be analysed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_unreadable_clip_is_left_out_of_the_figures_and_listed() {
    let dir = tempdir();
    let good = dir.path().join("good.mp4");
    common::talkgen(&["--face", "astronaut", "--seconds", "4", "--seed", "5", "--out", path_str(&good), "--quiet"]);
    std::fs::write(dir.path().join("bad.mp4"), b"not media").unwrap();
    let list = dir.path().join("list.csv");
    std::fs::write(&list, "good.mp4,0,0,none\nbad.mp4,1,,drift\n").unwrap();
    let (ok, stdout, stderr) = guard(&["eval", path_str(&list), "--json", "--jobs", "1"]);
    assert!(ok, "{stderr}");
    let f: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(f["clips"], 1, "{f}");
    assert_eq!(f["failed_clips"], serde_json::json!(["bad.mp4"]), "{f}");
    assert!(stderr.contains("bad.mp4"), "{stderr}");
}
