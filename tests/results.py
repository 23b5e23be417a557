#!/usr/bin/env python3
"""Test results that cannot lie.

  results.py settle NAME RC XML PROGRESS LIMIT
      After a test program ran (exit status RC, time limit LIMIT seconds):
      if it crashed, was killed, hung or wrote no result, XML is rewritten
      to count what its progress file (tests/gtest_main.cpp) says it passed
      and failed, plus one failed test naming the program and what became
      of it.  A program that exited non-zero although its result shows no
      failure gets that failure added too.  Prints what happened.
  results.py check NAME PASSED MESSAGE XML
      One check of the runner's own (e.g. "the lab's libvirtd is alive") as
      a result file of one test, failed unless PASSED is 1.
  results.py summary DIR
      Sums every *.xml in DIR: one line per file, then the closing line
      "N passed, N failed, N skipped"; writes DIR/total ("P F S").
"""
import glob
import os
import signal
import sys
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr


def fate(rc, limit):
    """What became of a program, from timeout(1)'s exit status."""
    if rc == 124:
        return f"hung: stopped after its limit of {limit} s"
    if rc == 137:
        return f"killed by SIGKILL (it did not stop within 30 s of its limit of {limit} s, or was killed)"
    if rc > 128:
        try:
            name = signal.Signals(rc - 128).name
        except ValueError:
            name = f"signal {rc - 128}"
        return f"died of {name}"
    return f"exited with status {rc}"


def read_progress(path):
    """(passed, failed, skipped, last started test) from a progress file."""
    passed, failed, skipped, current = [], [], [], None
    if path and os.path.exists(path):
        with open(path, errors="replace") as f:
            for line in f:
                word, _, test = line.rstrip("\n").partition(" ")
                if word == "START":
                    current = test
                elif word in ("PASS", "FAIL", "SKIP"):
                    {"PASS": passed, "FAIL": failed, "SKIP": skipped}[word].append(test)
                    if test == current:
                        current = None
    return passed, failed, skipped, current


def parse(path):
    try:
        return ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None


def write_suite(path, name, cases):
    """cases: (test name, None | "failure" text | "skipped")."""
    fails = sum(1 for _, r in cases if r not in (None, "skipped"))
    skips = sum(1 for _, r in cases if r == "skipped")
    with open(path, "w") as out:
        out.write(f'<testsuites tests="{len(cases)}" failures="{fails}" errors="0" skipped="{skips}">\n')
        out.write(f'<testsuite name={quoteattr(name)} tests="{len(cases)}" failures="{fails}" skipped="{skips}">\n')
        for test, r in cases:
            out.write(f"<testcase name={quoteattr(test)}>")
            if r == "skipped":
                out.write("<skipped/>")
            elif r is not None:
                out.write(f"<failure message={quoteattr(r)}>{escape(r)}</failure>")
            out.write("</testcase>\n")
        out.write("</testsuite>\n</testsuites>\n")


def settle(name, rc, xml, progress, limit):
    rc = int(rc)
    root = parse(xml)
    if root is not None and rc == 0:
        return 0
    if root is not None:
        failures = int(root.get("failures", 0)) + int(root.get("errors", 0))
        if failures > 0 and rc == 1:
            return 0  # GoogleTest's way of saying some tests failed
        # A result, but the exit status says something else went wrong.
        passed, failed, skipped, _ = read_progress(progress)
        why = f"{name}: {fate(rc, limit)} although its result shows {failures} failure(s)"
        cases = [(t, None) for t in passed] + [(t, "failed") for t in failed] + [(t, "skipped") for t in skipped]
        write_suite(xml, name, cases + [(name, why)])
        print(f"FAILED: {why}")
        return 1
    passed, failed, skipped, current = read_progress(progress)
    during = f" during {current}" if current else ""
    why = f"{name}: {fate(rc, limit)}{during} and wrote no result"
    if rc == 0:
        why = f"{name}: exited with status 0 but wrote no result"
    cases = [(t, None) for t in passed] + [(t, "failed") for t in failed] + [(t, "skipped") for t in skipped]
    write_suite(xml, name, cases + [(name, why)])
    print(f"FAILED: {why} (counted: {len(passed)} passed, {len(failed)} failed before it stopped)")
    return 1


def check(name, passed, message, xml):
    write_suite(xml, name, [(message, None if passed == "1" else message)])
    return 0


def summary(directory):
    total = {"passed": 0, "failed": 0, "skipped": 0}
    for f in sorted(glob.glob(os.path.join(directory, "*.xml"))):
        r = parse(f)
        if r is None:
            p, fl, sk = 0, 1, 0
            print(f"{os.path.basename(f)[:-4]:>28}: unreadable result file, counted as 1 failed")
        else:
            t, fl, er = (int(r.get(k, 0)) for k in ("tests", "failures", "errors"))
            sk = int(r.get("skipped", 0)) + int(r.get("disabled", 0))
            # GoogleTest counts skipped tests in "tests"; count them from the cases too.
            sk = max(sk, sum(1 for c in r.iter("testcase") if c.find("skipped") is not None))
            fl += er
            p = t - fl - sk
            print(f"{os.path.basename(f)[:-4]:>28}: {p} passed, {fl} failed, {sk} skipped")
            for c in r.iter("testcase"):
                for bad in (c.find("failure"), c.find("error")):
                    if bad is not None:
                        print(f"{'':>30}FAILED {c.get('classname', '') + '.' if c.get('classname') else ''}"
                              f"{c.get('name')}")
                        break
        total["passed"] += p
        total["failed"] += fl
        total["skipped"] += sk
    with open(os.path.join(directory, "total"), "w") as out:
        out.write(f"{total['passed']} {total['failed']} {total['skipped']}\n")
    print(f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return 1 if total["failed"] else 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    sys.exit({"settle": settle, "check": check, "summary": summary}[cmd](*args))
