"""All thirteen languages LibreChat offers: run, read and write files, fail to build."""
import pytest

from conftest import Daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """Compilers need more than the 4 s the other modules' daemon allows."""
    d = Daemon(tmp_path_factory.mktemp("langs"), CI_MAX_RUN_TIMEOUT_SECONDS="60").start()
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()

# lang: (hello-with-argument program, program reading in.txt and writing out.txt,
#        a program that does not build, words its error shows)
PROGRAMS = {
    "py": ("import sys\nprint('hello', sys.argv[1])",
           "s = open('in.txt').read().strip()\nopen('out.txt', 'w').write(s.upper())",
           "def f(:\n  pass", "SyntaxError"),
    "js": ("console.log('hello', process.argv[2])",
           "const fs = require('fs');\nfs.writeFileSync('out.txt', fs.readFileSync('in.txt', 'utf8').trim().toUpperCase())",
           "function (", "SyntaxError"),
    "ts": ("const who: string = process.argv[2];\nconsole.log('hello', who)",
           "import * as fs from 'fs';\nconst s: string = fs.readFileSync('in.txt', 'utf8').trim();\nfs.writeFileSync('out.txt', s.toUpperCase());",
           "let x: number = ;", "error TS"),
    "bash": ('echo hello "$1"', "tr a-z A-Z < in.txt | tr -d '\\n' > out.txt", "if then fi", "syntax error"),
    "c": ('#include <stdio.h>\nint main(int c, char **v) { printf("hello %s\\n", v[1]); return 0; }',
          '#include <stdio.h>\n#include <ctype.h>\nint main(void) { FILE *i = fopen("in.txt", "r"), *o = fopen("out.txt", "w"); int ch;\n'
          '  while ((ch = fgetc(i)) != EOF) if (ch != 10) fputc(toupper(ch), o); fclose(o); return 0; }',
          "int main( { return 0 }", "error"),
    "cpp": ('#include <iostream>\nint main(int c, char **v) { std::cout << "hello " << v[1] << std::endl; }',
            '#include <fstream>\n#include <string>\n#include <algorithm>\nint main() { std::ifstream i("in.txt"); std::string s; std::getline(i, s);\n'
            '  std::transform(s.begin(), s.end(), s.begin(), ::toupper); std::ofstream("out.txt") << s; }',
            "int main() { std::cout << 1 }", "error"),
    "java": ('public class Greeter {\n  public static void main(String[] a) { System.out.println("hello " + a[0]); }\n}',
             'import java.nio.file.*;\npublic class Upper {\n  public static void main(String[] a) throws Exception {\n'
             '    String s = Files.readString(Path.of("in.txt")).trim();\n    Files.writeString(Path.of("out.txt"), s.toUpperCase());\n  }\n}',
             "public class Broken { void f( }", "error"),
    "php": ('<?php echo "hello " . $argv[1] . "\\n";',
            '<?php file_put_contents("out.txt", strtoupper(trim(file_get_contents("in.txt"))));',
            "<?php echo (;", "Parse error"),
    "rs": ('fn main() { let a: Vec<String> = std::env::args().collect(); println!("hello {}", a[1]); }',
           'fn main() { let s = std::fs::read_to_string("in.txt").unwrap();\n'
           '  std::fs::write("out.txt", s.trim().to_uppercase()).unwrap(); }',
           "fn main() { let x: i32 = \"a\"; }", "error"),
    "go": ('package main\nimport ("fmt"; "os")\nfunc main() { fmt.Println("hello", os.Args[1]) }',
           'package main\nimport ("os"; "strings")\nfunc main() { b, _ := os.ReadFile("in.txt")\n'
           '  os.WriteFile("out.txt", []byte(strings.ToUpper(strings.TrimSpace(string(b)))), 0644) }',
           "package main\nfunc main() { x := }", "syntax error"),
    "d": ('import std.stdio;\nvoid main(string[] a) { writeln("hello ", a[1]); }',
          'import std.file, std.string, std.uni;\nvoid main() { write("out.txt", readText("in.txt").strip.toUpper); }',
          "void main() { int x = ; }", "error"),
    "f90": ("program hello\n  character(len=32) :: arg\n  call get_command_argument(1, arg)\n  print '(a,a)', 'hello ', trim(arg)\nend program hello",
            "program up\n  character(len=64) :: s\n  integer :: i\n  open(1, file='in.txt'); read(1, '(a)') s; close(1)\n"
            "  do i = 1, len_trim(s)\n    if (s(i:i) >= 'a' .and. s(i:i) <= 'z') s(i:i) = achar(iachar(s(i:i)) - 32)\n  end do\n"
            "  open(2, file='out.txt', access='stream', status='replace'); write(2) trim(s); close(2)\n"
            "end program up",
            "program broken\n  x = = 1\nend program", "Error"),
    "r": ('a <- commandArgs(trailingOnly = TRUE)\ncat("hello", a[1], "\\n")',
          's <- trimws(readLines("in.txt"))\ncat(toupper(s), file = "out.txt")',
          "f <- function( {", "Error"),
}


@pytest.mark.parametrize("lang", sorted(PROGRAMS))
def test_language(daemon, lang):
    hello, io, broken, words = PROGRAMS[lang]
    r = daemon.exec(hello, lang=lang, args=["world"])
    assert r["stdout"].strip() == "hello world", (lang, r)
    assert r["code"] == 0
    sid = r["session_id"]
    daemon.exec("printf 'shout me\\n' > in.txt", lang="bash", session=sid)
    r = daemon.exec(io, lang=lang, session=sid)
    assert r["code"] == 0, (lang, r["stderr"])
    out = [f for f in r["files"] if f["name"] == "out.txt"]
    assert out, (lang, r)
    got = daemon.request("GET", f"/download/{sid}/{out[0]['id']}")
    assert got.raw == b"SHOUT ME", (lang, got.raw)
    r = daemon.exec(broken, lang=lang, session=sid)
    assert r["code"] != 0 and words in r["stderr"], (lang, r)
    assert r["status"] is None


def test_java_file_is_named_after_its_public_class(daemon):
    r = daemon.exec('public class Report {\n  public static void main(String[] a) {\n'
                    '    System.out.println(new Object(){}.getClass().getEnclosingClass().getSimpleName()); }\n}',
                    lang="java")
    assert r["stdout"] == "Report\n"


def test_r_plots_come_back_as_png(daemon):
    r = daemon.exec('png("explicit.png")\nplot(1:10)\ninvisible(dev.off())\n'
                    'library(ggplot2)\np <- ggplot(data.frame(x = 1:3, y = c(2, 1, 3)), aes(x, y)) + geom_line()\n'
                    'print(p)\ninvisible(dev.off())', lang="r")
    names = {f["name"] for f in r["files"]}
    assert {"explicit.png", "plot_0.png"} <= names, r
    got = daemon.request("GET", f"/download/{r['session_id']}/" +
                         next(f["id"] for f in r["files"] if f["name"] == "plot_0.png"))
    assert got.raw.startswith(b"\x89PNG")


def test_switching_language_keeps_mnt_data(daemon):
    sid = daemon.exec("open('shared.txt','w').write('from python')")["session_id"]
    r = daemon.exec('#include <stdio.h>\nint main(void){ char b[64]={0}; FILE *f=fopen("shared.txt","r");'
                    ' fread(b,1,63,f); puts(b); return 0; }', lang="c", session=sid)
    assert r["session_id"] == sid and r["stdout"] == "from python\n"
