/* Every command line quoted in README.md and docs/ (every .md) that runs a program of build/bin
 * names a program and subcommand that exist, and only options that the program's (or the
 * subcommand's) --help lists.
 *
 * Command lines are taken from fenced code blocks (not ```c or ```json ones) and from inline
 * code spans; a line is split at "|", ";" and "&&", and each part that starts with a
 * program's name (or build/bin/<name>) is a command. Synopses count too: every "--option"
 * in them is looked up. Each program's --help is run once, as a real process. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tooltest.h"

static tt_result r;

static const char *const programs[] = {
    "shmbus", "shmbus-monitor", "shmbus-bench", "shmbus-chaos", "camera-pub",
    "frame-sink", "frame-stats", "hello", "pool-demo", "camera-sub-cpp", "share-mem-origin",
    "shmbus-bridge", "shmbus-bench-bridge", "shmbus-gst-bench",
};
#define NPROGRAMS (sizeof programs / sizeof programs[0])

/* ---- --help texts, cached ------------------------------------------------------------------- */

#define MAX_HELPS 48
static struct help {
    char key[64]; /* "shmbus echo", "camera-pub" */
    int code;
    char *text;
} helps[MAX_HELPS];
static int nhelps;

static const struct help *help_of(const char *prog, const char *sub, const char *sub2)
{
    char key[64];
    snprintf(key, sizeof key, "%s%s%s%s%s", prog, sub ? " " : "", sub ? sub : "",
             sub2 ? " " : "", sub2 ? sub2 : "");
    for (int i = 0; i < nhelps; i++)
        if (strcmp(helps[i].key, key) == 0)
            return &helps[i];
    assert_true(nhelps < MAX_HELPS);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", SHMBUS_BIN_DIR, prog);
    const char *argv[5] = {path};
    int n = 1;
    if (sub)
        argv[n++] = sub;
    if (sub2)
        argv[n++] = sub2;
    argv[n++] = "--help";
    argv[n] = NULL;
    tt_run(&r, 10000, argv);
    struct help *h = &helps[nhelps++];
    snprintf(h->key, sizeof h->key, "%s", key);
    h->code = r.code;
    h->text = strdup(r.out);
    assert_non_null(h->text);
    return h;
}

/* Does the help text list the option (followed by something that ends its name)? */
static bool lists(const char *text, const char *opt)
{
    size_t n = strlen(opt);
    for (const char *p = strstr(text, opt); p; p = strstr(p + 1, opt)) {
        char next = p[n];
        bool starts = p == text || !(p[-1] == '-' || (p[-1] >= 'a' && p[-1] <= 'z'));
        bool ends = !(next == '-' || (next >= 'a' && next <= 'z') || (next >= '0' && next <= '9'));
        if (starts && ends)
            return true;
    }
    return false;
}

/* ---- commands --------------------------------------------------------------------------------- */

static int checked, problems;
static char report[1 << 15];

static void problem(const char *where, const char *cmd, const char *fmt, const char *arg)
{
    size_t n = strlen(report);
    snprintf(report + n, sizeof report - n, "%s: `%s`: ", where, cmd);
    n = strlen(report);
    snprintf(report + n, sizeof report - n, fmt, arg);
    n = strlen(report);
    snprintf(report + n, sizeof report - n, "\n");
    problems++;
}

/* The program a word names ("build/bin/shmbus" or "shmbus"), or NULL. */
static const char *program_of(const char *word)
{
    const char *base = strncmp(word, "build/bin/", 10) == 0 ? word + 10 : word;
    for (size_t i = 0; i < NPROGRAMS; i++)
        if (strcmp(base, programs[i]) == 0)
            return programs[i];
    return NULL;
}

/* One command: its words in cmd (a copy, split here). */
static void check_command(const char *where, char *cmd)
{
    char shown[256];
    snprintf(shown, sizeof shown, "%s", cmd);
    char *words[64];
    int n = 0;
    for (char *save = NULL, *w = strtok_r(cmd, " \t", &save); w && n < 64;
         w = strtok_r(NULL, " \t", &save))
        words[n++] = w;
    int first = 0;
    while (first < n && strchr(words[first], '=') && words[first][0] != '-')
        first++; /* VAR=value before the program */
    if (first >= n || strcmp(words[first], "build/bin/") == 0)
        return; /* the folder itself */
    for (int i = first; i < n && i < first + 2; i++)
        if (words[i][strlen(words[i]) - 1] == ':')
            return; /* a message the program printed ("shmbus echo: received 5, ..."), quoted */
    const char *prog = program_of(words[first]);
    if (!prog && strncmp(words[first], "build/bin/", 10) == 0 &&
        strncmp(words[first], "build/bin/test_", 15) != 0) {
        problem(where, shown, "no such program %s", words[first]);
        return;
    }
    if (!prog)
        return;
    /* subcommands: shmbus COMMAND (config check), shmbus-bench COMMAND */
    const char *sub = NULL, *sub2 = NULL;
    int opts_from = first + 1;
    if ((strcmp(prog, "shmbus") == 0 || strcmp(prog, "shmbus-bench") == 0) && first + 1 < n &&
        words[first + 1][0] >= 'a' && words[first + 1][0] <= 'z') {
        sub = words[first + 1];
        opts_from++;
        if (strcmp(sub, "config") == 0 && first + 2 < n && strcmp(words[first + 2], "check") == 0) {
            sub2 = "check";
            opts_from++;
        }
    }
    if (sub && (strcmp(sub, "COMMAND") == 0 || strcmp(sub, "help") == 0))
        sub = NULL; /* the synopsis of the command itself */
    const struct help *h = help_of(prog, sub, sub2);
    if (h->code != 0) {
        problem(where, shown, "its --help exits with %s", h->code == 2 ? "2 (unknown)" : "!= 0");
        return;
    }
    checked++;
    for (int i = opts_from; i < n; i++) {
        /* every --option in the word, e.g. "[--count", "--size=4KiB", "(--size" */
        for (char *p = strstr(words[i], "--"); p; p = strstr(p + 2, "--")) {
            char opt[64];
            size_t k = 0;
            opt[k++] = '-';
            opt[k++] = '-';
            for (const char *q = p + 2; k < sizeof opt - 1 &&
                                        ((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') ||
                                         *q == '-');
                 q++)
                opt[k++] = *q;
            opt[k] = 0;
            if (k > 2 && !lists(h->text, opt))
                problem(where, shown, "%s is not in its --help", opt);
        }
        if (words[i][0] == '-' && words[i][1] != '-' && words[i][1] && words[i][2] == 0 &&
            !lists(h->text, words[i]))
            problem(where, shown, "%s is not in its --help", words[i]);
    }
}

/* A line of shell: drop the comment, split into commands. */
static void check_shell_line(const char *where, const char *line)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", line);
    char *hash = strstr(buf, " #");
    if (hash)
        *hash = 0;
    if (buf[0] == '#')
        return;
    for (char *p = buf; *p; p++)
        if (*p == '|' || *p == ';' || *p == '&' || *p == '`' || *p == '(' || *p == ')')
            *p = '\n';
    for (char *save = NULL, *c = strtok_r(buf, "\n", &save); c; c = strtok_r(NULL, "\n", &save))
        check_command(where, c);
}

static void check_file(const char *path, const char *name)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("%s: cannot read", path);
    char line[2048];
    bool fenced = false, shell = false;
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        char where[128];
        snprintf(where, sizeof where, "%s:%d", name, lineno);
        if (strncmp(line, "```", 3) == 0) {
            fenced = !fenced;
            shell = fenced && (line[3] == 0 || strcmp(line + 3, "sh") == 0 ||
                               strcmp(line + 3, "bash") == 0);
            continue;
        }
        if (fenced) {
            if (shell)
                check_shell_line(where, line);
            continue;
        }
        /* inline code spans */
        for (char *p = strchr(line, '`'); p; p = strchr(p + 1, '`')) {
            char *end = strchr(p + 1, '`');
            if (!end)
                break;
            *end = 0;
            check_shell_line(where, p + 1);
            *end = '`';
            p = end;
        }
    }
    fclose(f);
}

static void test_every_quoted_command_line_uses_options_its_program_has(void **state)
{
    (void)state;
    check_file(SHMBUS_SOURCE_DIR "/README.md", "README.md");
    DIR *d = opendir(SHMBUS_SOURCE_DIR "/docs");
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 4 || strcmp(de->d_name + n - 3, ".md") != 0)
            continue;
        char path[512], name[300];
        snprintf(path, sizeof path, "%s/docs/%s", SHMBUS_SOURCE_DIR, de->d_name);
        snprintf(name, sizeof name, "docs/%s", de->d_name);
        check_file(path, name);
    }
    closedir(d);
    fprintf(stderr, "%d command lines checked against %d --help texts\n", checked, nhelps);
    if (problems)
        fail_msg("%d problem(s):\n%s", problems, report);
    assert_true(checked >= 40); /* the docs quote far more than that: the parser found them */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TT_TEST(test_every_quoted_command_line_uses_options_its_program_has),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
