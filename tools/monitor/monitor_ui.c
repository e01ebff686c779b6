/* shmbus-monitor: the live ncurses screen. The overview stacks three sections (topics,
 * pools, participants) and shares the rows between them; Enter opens one topic's details.
 * Everything drawn comes from the model; this file only lays it out and reads keys. */
#include <curses.h>
#include <langinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monitor.h"

enum { C_HEAD = 1, C_GOOD, C_BAD, C_WARN, C_TITLE };

typedef struct ui {
    mon_model *m;
    const mon_opts *o;
    bool utf8, colors, paused, detail;
    int sel, top;       /* selected topic row; first topic row shown */
    char sel_name[64];  /* the selection follows its topic across refreshes and sorts */
} ui;

typedef struct line {
    char text[768];
    int attr;
} line;

#define MAX_LINES 256

static int color(const ui *u, int pair) { return u->colors ? COLOR_PAIR(pair) : 0; }

/* Draw s at (y, 0), the rest of the row cleared. A line wider than the screen is cut at a
 * word and ends with a visible mark ("..>"), never in the middle of a number. */
static void put(int y, const char *s, int attr)
{
    if (y < 0 || y >= LINES)
        return;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    tool_fit_line(buf, COLS > 0 ? (size_t)COLS : 0);
    move(y, 0);
    clrtoeol();
    attron(attr);
    mvaddstr(y, 0, buf);
    attroff(attr);
}

static void header(const ui *u)
{
    const mon_model *m = u->m;
    const shmbus_snapshot *s = m->cur;
    char buf[512], sel[64] = "";
    if (s)
        snprintf(sel, sizeof sel, "%u topics %u pools %u/%u alive", s->ntopics, s->npools,
                 s->alive, s->nparticipants);
    /* most important first: what is cut at the right edge of a narrow screen matters least */
    snprintf(buf, sizeof buf, " shmbus-monitor  %s%s  %s  sort:%s  %.1fs", m->domain,
             u->paused ? "  [PAUSED]" : "", sel, mon_sort_name(m->sort),
             u->o->interval_ms / 1000.0);
    int n = (int)strlen(buf);
    if (n < COLS && n < (int)sizeof buf - 1) { /* fill the bar to the right edge */
        int fill = COLS - n < (int)sizeof buf - 1 - n ? COLS - n : (int)sizeof buf - 1 - n;
        memset(buf + n, ' ', (size_t)fill);
        buf[n + fill] = 0;
    }
    buf[COLS < (int)sizeof buf ? COLS : (int)sizeof buf - 1] = 0;
    put(0, buf, A_REVERSE | color(u, C_HEAD));
    put(1, m->status, m->status[0] ? color(u, C_WARN) | A_BOLD : 0);
}

static void footer(const ui *u)
{
    const char *arrows = u->utf8 ? "↑↓/jk" : "Up/Dn/jk";
    char buf[256];
    if (u->detail)
        snprintf(buf, sizeof buf, " q quit  Esc back  %s previous/next topic  p %s", arrows,
                 u->paused ? "resume" : "pause");
    else
        snprintf(buf, sizeof buf, " q quit  %s move  Enter details  s sort  p %s", arrows,
                 u->paused ? "resume" : "pause");
    put(LINES - 1, buf, A_REVERSE);
}

/* Draw a section of `rows` rows from y: a title row, then lines[first..], and "+N more" in
 * the last row when they do not fit. */
static int section(int y, int rows, const line *title, const line *lines, int n, int first)
{
    if (rows <= 0)
        return y;
    put(y++, title->text, title->attr);
    int room = rows - 1;
    for (int i = 0; i < room; i++) {
        int k = first + i;
        if (k >= n)
            break;
        if (i == room - 1 && k < n - 1) {
            char more[64];
            snprintf(more, sizeof more, "  ... %d more (a taller window shows them)", n - k);
            put(y + i, more, A_DIM);
            break;
        }
        put(y + i, lines[k].text, lines[k].attr);
    }
    return y + room;
}

/* ---- overview ----------------------------------------------------------------------------- */

static bool stalled(const mon_row *r)
{
    if (r->t->npubs == 0 || r->r.rate_hz > 0 || !r->hist)
        return false;
    for (unsigned i = 0; i < r->hist->n; i++)
        if (r->hist->v[i] > 0)
            return true; /* it was flowing, now it is not */
    return false;
}

static int topic_lines(const ui *u, const mon_layout *l, line *out)
{
    const mon_model *m = u->m;
    if (m->nrows == 0) {
        snprintf(out[0].text, sizeof out[0].text, "  (no topics)");
        out[0].attr = A_DIM;
        return 1;
    }
    for (unsigned i = 0; i < m->nrows && i < MAX_LINES; i++) {
        const mon_row *r = &m->rows[i];
        mon_fmt_topic(l, r, out[i].text, sizeof out[i].text);
        out[i].attr = stalled(r) ? color(u, C_BAD) : r->r.lost ? color(u, C_WARN) : 0;
        if ((int)i == u->sel)
            out[i].attr |= A_REVERSE;
    }
    return m->nrows < MAX_LINES ? (int)m->nrows : MAX_LINES;
}

static int pool_lines(const ui *u, const mon_layout *l, line *out)
{
    const shmbus_snapshot *s = u->m->cur;
    int n = 0;
    for (unsigned i = 0; i < s->npools && n < MAX_LINES - 1; i++) {
        const shmbus_pool_info *p = &s->pools[i];
        for (unsigned c = 0; c < p->nclasses && n < MAX_LINES - 1; c++) {
            const shmbus_class_stats *k = &p->classes[c];
            mon_fmt_pool_class(l, p, c, out[n].text, sizeof out[n].text);
            bool full = k->total && k->used == k->total;
            out[n++].attr = full || k->failed_loans ? color(u, C_BAD)
                            : k->total && k->used * 5 >= k->total * 4 ? color(u, C_WARN)
                                                                      : color(u, C_GOOD);
        }
        if (mon_fmt_holders(l, s, p, out[n].text, sizeof out[n].text)) {
            bool dead = strstr(out[n].text, "DEAD") || strstr(out[n].text, "(gone)");
            out[n++].attr = dead ? color(u, C_BAD) | A_BOLD : 0;
        }
    }
    if (n == 0) {
        snprintf(out[0].text, sizeof out[0].text, "  (no pools)");
        out[n++].attr = A_DIM;
    }
    return n;
}

static int part_lines(const ui *u, const mon_layout *l, line *out)
{
    const shmbus_snapshot *s = u->m->cur;
    int n = 0;
    for (unsigned i = 0; i < s->nparticipants && n < MAX_LINES; i++) {
        const shmbus_participant_info *p = &s->participants[i];
        mon_fmt_part(l, p, out[n].text, sizeof out[n].text);
        out[n++].attr = p->alive ? 0 : color(u, C_BAD) | A_BOLD;
    }
    return n;
}

/* Share `avail` rows between sections that want need[i] rows: each first gets up to two
 * (its title and one line), then the rest goes to them in order. */
static void share(int avail, const int *need, int *got, int n)
{
    for (int i = 0; i < n; i++) {
        got[i] = need[i] < 2 ? need[i] : 2;
        got[i] = got[i] < avail ? got[i] : avail;
        avail -= got[i];
    }
    for (int i = 0; i < n && avail > 0; i++) {
        int more = need[i] - got[i] < avail ? need[i] - got[i] : avail;
        got[i] += more;
        avail -= more;
    }
}

static void draw_overview(ui *u, const mon_layout *l)
{
    static line tl[MAX_LINES], pl[MAX_LINES], ql[MAX_LINES];
    line titles[3];
    mon_fmt_topic_header(l, titles[0].text, sizeof titles[0].text);
    mon_fmt_pool_header(l, titles[1].text, sizeof titles[1].text);
    mon_fmt_part_header(l, titles[2].text, sizeof titles[2].text);
    for (int i = 0; i < 3; i++)
        titles[i].attr = A_BOLD | color(u, C_TITLE);
    int n[3] = {topic_lines(u, l, tl), pool_lines(u, l, pl), part_lines(u, l, ql)};
    int avail = LINES - 3; /* header, status, footer */
    int gaps = avail >= 12 ? 2 : 0;
    int need[3] = {n[0] + 1, n[1] + 1, n[2] + 1}, got[3];
    share(avail - gaps, need, got, 3);
    /* keep the selected topic visible */
    int visible = got[0] - 1;
    if (u->sel < u->top)
        u->top = u->sel;
    if (visible > 0 && u->sel >= u->top + visible)
        u->top = u->sel - visible + 1;
    if (u->top > n[0] - visible)
        u->top = n[0] - visible > 0 ? n[0] - visible : 0;
    int y = section(2, got[0], &titles[0], tl, n[0], u->top);
    y += gaps ? 1 : 0;
    y = section(y, got[1], &titles[1], pl, n[1], 0);
    y += gaps ? 1 : 0;
    section(y, got[2], &titles[2], ql, n[2], 0);
}

/* ---- one topic ---------------------------------------------------------------------------- */

static void draw_detail(ui *u, const mon_layout *l)
{
    static line lines[MAX_LINES];
    const mon_model *m = u->m;
    const mon_row *r = u->sel >= 0 && (unsigned)u->sel < m->nrows ? &m->rows[u->sel] : NULL;
    int n = 0;
    if (!r) {
        put(2, "  the topic is gone (Esc: back)", A_DIM);
        return;
    }
    const shmbus_topic_info *t = r->t;
    char a[32], b[32], c[32], spark[256];
#define ADD(attr_, ...)                                                                    \
    do {                                                                                   \
        if (n < MAX_LINES) {                                                               \
            snprintf(lines[n].text, sizeof lines[n].text, __VA_ARGS__);                    \
            lines[n++].attr = (attr_);                                                     \
        }                                                                                  \
    } while (0)
    ADD(A_BOLD, "TOPIC %s", t->def.name);
    if (t->def.full_wait_ms > 0)
        snprintf(c, sizeof c, "wait %d ms", (int)t->def.full_wait_ms);
    else
        snprintf(c, sizeof c, "fail");
    ADD(0, "  pool %s  history %u  max_held %u  queue_depth %u  delivery %s", t->def.pool,
        (unsigned)t->def.history, (unsigned)t->def.max_held, (unsigned)t->def.queue_depth,
        tool_delivery_name(t->def.delivery));
    ADD(0, "  max message %s  when the pool is full: %s",
        tool_fmt_size(a, sizeof a, t->def.max_message_size), c);
    ADD(0, "  rate %s Hz  bandwidth %s  latency p50 %s  p99 %s  lost %llu",
        tool_fmt_hz(a, sizeof a, r->r.rate_hz), tool_fmt_bw(b, sizeof b, r->r.bandwidth_bps, false),
        mon_fmt_lat(c, sizeof c, r->r.has_latency, r->r.p50_ns),
        mon_fmt_lat(spark, sizeof spark, r->r.has_latency, r->r.p99_ns),
        (unsigned long long)r->r.lost);
    double max = 0;
    for (unsigned i = 0; r->hist && i < r->hist->n; i++)
        max = r->hist->v[i] > max ? r->hist->v[i] : max;
    mon_fmt_spark(r->hist, MON_HISTORY, l->utf8, spark, sizeof spark);
    ADD(stalled(r) ? color(u, C_BAD) : 0, "  rate history %s  (last %d refreshes, max %s Hz)",
        spark, MON_HISTORY, tool_fmt_hz(a, sizeof a, max));
    ADD(0, "%s", "");
    ADD(A_BOLD | color(u, C_TITLE), "PUBLISHERS (%u)", t->npubs);
    mon_fmt_pub_header(l, lines[n < MAX_LINES ? n : MAX_LINES - 1].text, sizeof lines[0].text);
    if (n < MAX_LINES)
        lines[n++].attr = A_BOLD;
    for (unsigned i = 0; i < t->npubs && n < MAX_LINES; i++) {
        mon_fmt_pub(l, m, t, &t->pubs[i], lines[n].text, sizeof lines[n].text);
        lines[n++].attr = t->pubs[i].alive ? 0 : color(u, C_BAD);
    }
    ADD(0, "%s", "");
    ADD(A_BOLD | color(u, C_TITLE), "SUBSCRIBERS (%u)", t->nsubs);
    mon_fmt_sub_header(l, lines[n < MAX_LINES ? n : MAX_LINES - 1].text, sizeof lines[0].text);
    if (n < MAX_LINES)
        lines[n++].attr = A_BOLD;
    for (unsigned i = 0; i < t->nsubs && n < MAX_LINES; i++) {
        const shmbus_sub_info *s = &t->subs[i];
        mon_fmt_sub(l, m, t, s, lines[n].text, sizeof lines[n].text);
        lines[n++].attr = !s->alive ? color(u, C_BAD)
                          : s->expired || s->dropped || s->overflow ? color(u, C_WARN)
                                                                    : 0;
    }
#undef ADD
    int room = LINES - 3;
    for (int i = 0; i < room && i < n; i++) {
        if (i == room - 1 && i < n - 1) {
            char more[64];
            snprintf(more, sizeof more, "  ... %d more (a taller window shows them)", n - i);
            put(2 + i, more, A_DIM);
            break;
        }
        put(2 + i, lines[i].text, lines[i].attr);
    }
}

/* ---- the loop ----------------------------------------------------------------------------- */

static void follow_selection(ui *u)
{
    mon_model *m = u->m;
    int found = -1;
    for (unsigned i = 0; i < m->nrows; i++)
        if (strcmp(m->rows[i].t->def.name, u->sel_name) == 0)
            found = (int)i;
    if (found >= 0)
        u->sel = found;
    if (u->sel >= (int)m->nrows)
        u->sel = (int)m->nrows - 1;
    if (u->sel < 0)
        u->sel = 0;
    if (m->nrows)
        snprintf(u->sel_name, sizeof u->sel_name, "%s", m->rows[u->sel].t->def.name);
}

static void draw(ui *u)
{
    mon_layout l;
    mon_layout_init(&l, COLS, u->utf8);
    erase();
    header(u);
    if (!u->m->cur)
        put(3, "  waiting for the domain to start ...", A_DIM);
    else if (u->detail)
        draw_detail(u, &l);
    else
        draw_overview(u, &l);
    footer(u);
    refresh();
}

/* Returns false to quit. */
static bool key(ui *u, int ch, uint64_t *next_refresh)
{
    mon_model *m = u->m;
    int page = LINES > 8 ? LINES / 2 : 1;
    switch (ch) {
    case 'q':
    case 'Q':
        return false;
    case KEY_UP:
    case 'k':
        u->sel--;
        break;
    case KEY_DOWN:
    case 'j':
        u->sel++;
        break;
    case KEY_PPAGE:
        u->sel -= page;
        break;
    case KEY_NPAGE:
        u->sel += page;
        break;
    case KEY_HOME:
    case 'g':
        u->sel = 0;
        break;
    case KEY_END:
    case 'G':
        u->sel = (int)m->nrows - 1;
        break;
    case '\n':
    case '\r':
    case KEY_ENTER:
        u->detail = !u->detail && m->nrows > 0;
        break;
    case 27: /* Esc */
    case KEY_BACKSPACE:
    case 127:
    case KEY_LEFT:
    case 'h':
        u->detail = false;
        break;
    case 's':
    case 'S':
        m->sort = (mon_sort)((m->sort + 1) % MON_SORT_COUNT);
        mon_model_sort(m);
        follow_selection(u);
        return true;
    case 'p':
    case 'P':
    case ' ':
        u->paused = !u->paused;
        if (!u->paused)
            *next_refresh = tool_now_ns();
        break;
    case KEY_RESIZE:
        clear(); /* repaint everything at the new size */
        break;
    }
    if (u->sel >= (int)m->nrows)
        u->sel = (int)m->nrows - 1;
    if (u->sel < 0)
        u->sel = 0;
    if (m->nrows)
        snprintf(u->sel_name, sizeof u->sel_name, "%s", m->rows[u->sel].t->def.name);
    return true;
}

int mon_run_ui(mon_model *m, const mon_opts *o)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "shmbus-monitor: the live view needs a terminal; use --once or --json\n");
        return MON_EXIT_ERROR;
    }
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (!scr) {
        fprintf(stderr, "shmbus-monitor: cannot use terminal \"%s\"; use --once or --json\n",
                getenv("TERM") ? getenv("TERM") : "");
        return MON_EXIT_ERROR;
    }
    ui u = {.m = m, .o = o};
    u.utf8 = !o->ascii && strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);
    if (has_colors() && start_color() == OK) {
        use_default_colors();
        init_pair(C_HEAD, COLOR_BLACK, COLOR_CYAN);
        init_pair(C_GOOD, COLOR_GREEN, -1);
        init_pair(C_BAD, COLOR_RED, -1);
        init_pair(C_WARN, COLOR_YELLOW, -1);
        init_pair(C_TITLE, COLOR_CYAN, -1);
        u.colors = true;
    }
    follow_selection(&u);
    /* the first rates need a second snapshot: take it soon */
    uint64_t interval = (uint64_t)o->interval_ms * 1000000ull;
    uint64_t next = tool_now_ns() + (interval < 500000000ull ? interval : 500000000ull);
    bool run = true;
    while (run && !tool_stop_requested()) {
        uint64_t now = tool_now_ns();
        if (!u.paused && now >= next) {
            mon_model_refresh(m);
            follow_selection(&u);
            next = now + interval;
        }
        draw(&u);
        uint64_t wait = u.paused || next <= now ? 250 : (next - now) / 1000000 + 1;
        timeout(wait > 250 ? 250 : (int)wait);
        int ch = getch();
        if (ch != ERR)
            run = key(&u, ch, &next);
    }
    endwin();
    delscreen(scr);
    return MON_EXIT_OK;
}
