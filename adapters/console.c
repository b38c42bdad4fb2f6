/* The console adapter: talk to opsbot in a terminal or through a pipe, the
 * way Hubot's shell and Errbot's text mode do. Every bot message is printed
 * as "[mN] text" (continuation lines indented); when input is not a terminal
 * the user's own lines are echoed as "[uN] user> text" so a transcript reads
 * like a chat.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opsbot/adapters.h"
#include "opsbot/err.h"
#include "opsbot/log.h"
#include "opsbot/util.h"

#define LINE_CAP (1 << 20) /* a longer line is discarded with one error line */
#define MSG_RING 4096
#define MAX_ASKS 32
#define MAX_OPEN_APPROVALS 64

struct msg_info {
    unsigned long id;
    char thread[128];
};

struct ask_route {
    char user[128];
    char thread[128];
};

struct console {
    struct ob_adapter ad;
    uv_loop_t *loop;
    FILE *out;
    int fd;
    bool tty;
    uv_handle_type type;
    union {
        uv_tty_t tty;
        uv_pipe_t pipe;
    } in;
    uv_fs_t fs_req;
    char fs_buf[65536];
    int64_t fs_offset;
    bool fs_reading;
    uv_idle_t resume;
    bool reading;
    bool eof;
    bool waiting;  /* /wait: hold input until nothing is in flight */
    bool wait_all; /* /wait all: ... and no approval is pending */
    bool quitting;
    bool stopped;
    bool shutdown_sent;
    int closing; /* handles still to close */
    /* input not yet processed */
    char *buf;
    size_t len, cap;
    bool discarding; /* inside an over-long line */
    char user[128];
    char channel[128];
    char run[16]; /* event ids are unique per run: "<run>-u7" */
    unsigned long next_msg, next_user;
    struct msg_info ring[MSG_RING];
    struct ask_route asks[MAX_ASKS];
    unsigned long open_approvals[MAX_OPEN_APPROVALS];
    size_t nopen;
    /* the last user event, for /redeliver */
    char last_id[64];
    char last_user[128];
    char last_thread[128];
    char *last_text;
};

static void process_input(struct console *c);
static void start_reading(struct console *c);
static void stop_reading(struct console *c);

/* ---- output -------------------------------------------------------------- */

static void print_msg(struct console *c, const char *tag, const char *text)
{
    const char *p = text;
    size_t indent = strlen(tag) + 1;
    bool first = true;

    do {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);

        if (first)
            fprintf(c->out, "%s %.*s\n", tag, (int)n, p);
        else
            fprintf(c->out, "%*s%.*s\n", (int)indent, "", (int)n, p);
        first = false;
        p = nl ? nl + 1 : NULL;
    } while (p && *p);
    fflush(c->out);
}

static struct msg_info *msg_lookup(struct console *c, unsigned long id)
{
    struct msg_info *m = &c->ring[id % MSG_RING];

    return m->id == id ? m : NULL;
}

/* "m7" or "7" -> 7; 0 when not a message id. */
static unsigned long parse_msg_id(const char *s)
{
    char *end;
    unsigned long v;

    if (*s == 'm')
        s++;
    if (!isdigit((unsigned char)*s))
        return 0;
    v = strtoul(s, &end, 10);
    return *end ? 0 : v;
}

static int console_post(struct ob_adapter *ad, const struct ob_post *p, ob_post_cb cb, void *data)
{
    struct console *c = ad->ctx;
    struct ob_msgref ref = {0};
    unsigned long id = ++c->next_msg;
    struct msg_info *m = &c->ring[id % MSG_RING];
    char tag[32];

    m->id = id;
    ob_strlcpy(m->thread, p->thread && *p->thread ? p->thread : "", sizeof(m->thread));
    snprintf(tag, sizeof(tag), "[m%lu]", id);
    print_msg(c, tag, p->text);
    if ((p->flags & OB_POST_QUESTION) && p->ask_user && p->thread) {
        size_t i, free_slot = MAX_ASKS;

        for (i = 0; i < MAX_ASKS; i++) {
            if (!strcmp(c->asks[i].user, p->ask_user))
                break;
            if (!c->asks[i].user[0] && free_slot == MAX_ASKS)
                free_slot = i;
        }
        if (i == MAX_ASKS)
            i = free_slot == MAX_ASKS ? 0 : free_slot;
        ob_strlcpy(c->asks[i].user, p->ask_user, sizeof(c->asks[i].user));
        ob_strlcpy(c->asks[i].thread, p->thread, sizeof(c->asks[i].thread));
    }
    if ((p->flags & OB_POST_APPROVAL) && !(p->flags & OB_POST_RESOLVED)) {
        if (c->nopen == MAX_OPEN_APPROVALS) {
            memmove(c->open_approvals, c->open_approvals + 1,
                    (MAX_OPEN_APPROVALS - 1) * sizeof(c->open_approvals[0]));
            c->nopen--;
        }
        c->open_approvals[c->nopen++] = id;
    }
    ob_strlcpy(ref.channel, p->channel ? p->channel : c->channel, sizeof(ref.channel));
    ob_strlcpy(ref.thread, m->thread, sizeof(ref.thread));
    snprintf(ref.message, sizeof(ref.message), "m%lu", id);
    if (cb)
        cb(data, 0, &ref);
    return 0;
}

static int console_update(struct ob_adapter *ad, const struct ob_msgref *ref,
                          const struct ob_post *p)
{
    struct console *c = ad->ctx;
    unsigned long id = parse_msg_id(ref->message);
    char tag[160];

    if (!id)
        return OB_ENOTFOUND;
    if (p->flags & OB_POST_RESOLVED) {
        for (size_t i = 0; i < c->nopen; i++) {
            if (c->open_approvals[i] == id) {
                memmove(&c->open_approvals[i], &c->open_approvals[i + 1],
                        (c->nopen - i - 1) * sizeof(c->open_approvals[0]));
                c->nopen--;
                break;
            }
        }
    }
    snprintf(tag, sizeof(tag), "[%s] (updated)", ref->message);
    print_msg(c, tag, p->text);
    return 0;
}

static int console_react(struct ob_adapter *ad, const struct ob_msgref *ref, const char *emoji)
{
    struct console *c = ad->ctx;

    fprintf(c->out, "[%s] (bot reacted :%s:)\n", ref->message, emoji);
    fflush(c->out);
    return 0;
}

/* ---- input --------------------------------------------------------------- */

static void emit(struct console *c, struct ob_event *ev)
{
    if (c->ad.on_event)
        c->ad.on_event(c->ad.on_event_data, &c->ad, ev);
}

static void say_error(struct console *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say_error(struct console *c, const char *fmt, ...)
{
    va_list ap;

    fprintf(c->out, "console: ");
    va_start(ap, fmt);
    vfprintf(c->out, fmt, ap);
    va_end(ap);
    fputc('\n', c->out);
    fflush(c->out);
}

static void send_message(struct console *c, const char *text, size_t len, const char *thread)
{
    struct ob_event ev = {0};
    char id[64], msg[32];
    const char *th = thread;
    unsigned long n = ++c->next_user;

    snprintf(id, sizeof(id), "%s-u%lu", c->run, n);
    snprintf(msg, sizeof(msg), "u%lu", n);
    if (!c->tty)
        fprintf(c->out, "[%s] %s> %.*s\n", msg, c->user, (int)(len > 200 ? 200 : len), text);
    fflush(c->out);
    /* The answer to a question the bot asked this user goes to its thread. */
    if (!th) {
        for (size_t i = 0; i < MAX_ASKS; i++) {
            if (c->asks[i].user[0] && !strcmp(c->asks[i].user, c->user)) {
                th = c->asks[i].thread;
                break;
            }
        }
    }
    ev.kind = OB_EV_MESSAGE;
    ev.id = id;
    ev.platform = "console";
    ev.user = c->user;
    ev.channel = c->channel;
    ev.thread = th && *th ? th : NULL;
    ev.message = msg;
    ev.text = text;
    ev.text_len = len;
    ev.addressed = true;
    ob_strlcpy(c->last_id, id, sizeof(c->last_id));
    ob_strlcpy(c->last_user, c->user, sizeof(c->last_user));
    ob_strlcpy(c->last_thread, ev.thread ? ev.thread : "", sizeof(c->last_thread));
    free(c->last_text);
    c->last_text = ob_xmalloc(len + 1);
    memcpy(c->last_text, text, len);
    c->last_text[len] = '\0';
    /* A question is answered once. */
    for (size_t i = 0; i < MAX_ASKS; i++)
        if (c->asks[i].user[0] && !strcmp(c->asks[i].user, c->user))
            c->asks[i].user[0] = '\0';
    emit(c, &ev);
}

static void send_reaction(struct console *c, enum ob_event_kind kind, unsigned long msg,
                          const char *emoji)
{
    struct ob_event ev = {0};
    char id[64], ref[32];
    struct msg_info *m = msg_lookup(c, msg);

    if (!m) {
        say_error(c, "no message m%lu", msg);
        return;
    }
    snprintf(id, sizeof(id), "%s-u%lu", c->run, ++c->next_user);
    snprintf(ref, sizeof(ref), "m%lu", msg);
    if (!c->tty)
        fprintf(c->out, "[u%lu] %s> (reacts :%s: on %s%s)\n", c->next_user, c->user, emoji, ref,
                kind == OB_EV_REACTION_REMOVE ? ", removed" : "");
    fflush(c->out);
    ev.kind = kind;
    ev.id = id;
    ev.platform = "console";
    ev.user = c->user;
    ev.channel = c->channel;
    ev.thread = m->thread[0] ? m->thread : NULL;
    ev.message = ref;
    ev.emoji = emoji;
    ev.addressed = true;
    emit(c, &ev);
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
            return false;
    return true;
}

static void command_help(struct console *c)
{
    fprintf(c->out,
            "console commands:\n"
            "  /as NAME              speak as console:NAME from now on\n"
            "  /react ID|last EMOJI  react on a bot message (e.g. /react m3 white_check_mark)\n"
            "  /unreact ID EMOJI     take a reaction back\n"
            "  /approve, /deny       react on the newest open approval request\n"
            "  /in ID TEXT           say TEXT in the thread of message ID\n"
            "  /wait                 wait until nothing is in flight\n"
            "  /wait all             ... and until no approval is open (decided or expired)\n"
            "  /redeliver            deliver your last message again (same event id)\n"
            "  /quit                 finish (waits for running actions)\n");
    fflush(c->out);
}

/* Work the console waits for: actions in flight, and with /wait all also
 * approvals still open (they end by a vote or by expiry). */
static bool busy(struct console *c)
{
    void *core = c->ad.on_event_data;

    if (c->ad.inflight && c->ad.inflight(core))
        return true;
    return c->wait_all && c->ad.pending_approvals && c->ad.pending_approvals(core);
}

/* Returns false when input processing must pause (/wait). */
static bool handle_command(struct console *c, char *line)
{
    char *cmd = line, *arg = line + strcspn(line, " \t");

    if (*arg)
        *arg++ = '\0';
    while (*arg == ' ' || *arg == '\t')
        arg++;
    if (!c->tty)
        fprintf(c->out, "[%s] %s> %s%s%s\n", "cmd", c->user, cmd, *arg ? " " : "", arg);
    if (!strcmp(cmd, "/as")) {
        if (!valid_name(arg))
            say_error(c, "usage: /as NAME (letters, digits, . _ -; at most 64)");
        else
            ob_strlcpy(c->user, arg, sizeof(c->user));
    } else if (!strcmp(cmd, "/react") || !strcmp(cmd, "/unreact")) {
        char *emoji = arg + strcspn(arg, " \t");
        unsigned long id;

        if (*emoji)
            *emoji++ = '\0';
        while (*emoji == ' ')
            emoji++;
        id = !strcmp(arg, "last") ? c->next_msg : parse_msg_id(arg);
        if (!id || !*emoji || strlen(emoji) > 64)
            say_error(c, "usage: %s ID|last EMOJI", cmd);
        else
            send_reaction(c, cmd[1] == 'u' ? OB_EV_REACTION_REMOVE : OB_EV_REACTION_ADD, id,
                          emoji[0] == ':' ? emoji + 1 : emoji);
    } else if (!strcmp(cmd, "/approve") || !strcmp(cmd, "/deny")) {
        if (!c->nopen)
            say_error(c, "no open approval request");
        else
            send_reaction(c, OB_EV_REACTION_ADD, c->open_approvals[c->nopen - 1],
                          cmd[1] == 'a' ? "white_check_mark" : "x");
    } else if (!strcmp(cmd, "/in")) {
        char *text = arg + strcspn(arg, " \t");
        unsigned long id;
        struct msg_info *m;
        char thread[128];

        if (*text)
            *text++ = '\0';
        id = parse_msg_id(arg);
        m = id ? msg_lookup(c, id) : NULL;
        if (!m || !*text) {
            say_error(c, "usage: /in ID TEXT (ID of a bot message)");
        } else {
            if (m->thread[0])
                ob_strlcpy(thread, m->thread, sizeof(thread));
            else
                snprintf(thread, sizeof(thread), "m%lu", id);
            send_message(c, text, strlen(text), thread);
        }
    } else if (!strcmp(cmd, "/wait")) {
        c->wait_all = !strcmp(arg, "all");
        if (*arg && !c->wait_all) {
            say_error(c, "usage: /wait [all]");
        } else if (busy(c)) {
            c->waiting = true;
            return false;
        }
    } else if (!strcmp(cmd, "/redeliver")) {
        struct ob_event ev = {0};

        if (!c->last_text) {
            say_error(c, "nothing to redeliver");
        } else {
            ev.kind = OB_EV_MESSAGE;
            ev.id = c->last_id;
            ev.platform = "console";
            ev.user = c->last_user;
            ev.channel = c->channel;
            ev.thread = c->last_thread[0] ? c->last_thread : NULL;
            ev.message = c->last_id;
            ev.text = c->last_text;
            ev.text_len = strlen(c->last_text);
            ev.addressed = true;
            emit(c, &ev);
        }
    } else if (!strcmp(cmd, "/quit")) {
        c->quitting = true;
        return false;
    } else if (!strcmp(cmd, "/help")) {
        command_help(c);
    } else {
        say_error(c, "unknown command %s (try /help)", cmd);
    }
    return true;
}

static void maybe_finish(struct console *c)
{
    if (!(c->eof || c->quitting) || c->shutdown_sent)
        return;
    if (c->quitting)
        c->len = 0;
    if (c->len)
        return;
    if (c->ad.inflight && c->ad.inflight(c->ad.on_event_data))
        return; /* idle() calls back when work is done */
    c->shutdown_sent = true;
    stop_reading(c);
    if (c->ad.shutdown)
        c->ad.shutdown(c->ad.on_event_data);
}

static void process_input(struct console *c)
{
    size_t off = 0;

    while (!c->waiting && !c->quitting && !c->stopped) {
        char *nl = memchr(c->buf + off, '\n', c->len - off);
        size_t n;
        char *line;

        if (!nl) {
            if (!c->eof || off == c->len)
                break;
            nl = c->buf + c->len; /* last line without newline */
        }
        line = c->buf + off;
        n = (size_t)(nl - line);
        off = nl < c->buf + c->len ? (size_t)(nl - c->buf) + 1 : c->len;
        if (n && line[n - 1] == '\r')
            n--;
        line[n] = '\0';
        if (n == 0)
            continue;
        if (line[0] == '/' && memchr(line, '\0', n) == NULL) {
            if (!handle_command(c, line))
                break;
        } else {
            send_message(c, line, n, NULL);
        }
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    if (c->waiting) {
        stop_reading(c);
        return;
    }
    maybe_finish(c);
    if (!c->eof && !c->quitting && !c->stopped && !c->shutdown_sent)
        start_reading(c);
}

static void feed(struct console *c, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c->discarding) {
            if (data[i] == '\n')
                c->discarding = false;
            continue;
        }
        if (c->len == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 4096;
            char *b;

            if (c->len >= LINE_CAP && !memchr(c->buf, '\n', c->len)) {
                say_error(c, "line longer than %d bytes: discarded", LINE_CAP);
                c->len = 0;
                c->discarding = data[i] != '\n';
                continue;
            }
            b = realloc(c->buf, cap + 1);
            if (!b) {
                say_error(c, "out of memory reading input: line discarded");
                c->len = 0;
                c->discarding = true;
                continue;
            }
            c->buf = b;
            c->cap = cap;
        }
        c->buf[c->len++] = data[i];
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct console *c = h->data;

    (void)suggested;
    buf->base = c->fs_buf;
    buf->len = sizeof(c->fs_buf);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct console *c = s->data;

    if (nread > 0) {
        feed(c, buf->base, (size_t)nread);
    } else if (nread < 0) {
        if (nread != UV_EOF)
            ob_warn("console", "reading input: %s", uv_strerror((int)nread));
        c->eof = true;
        stop_reading(c);
    } else {
        return;
    }
    process_input(c);
}

static void fs_read_cb(uv_fs_t *req)
{
    struct console *c = req->data;
    ssize_t n = req->result;

    uv_fs_req_cleanup(req);
    c->fs_reading = false;
    if (n > 0) {
        c->fs_offset += n;
        feed(c, c->fs_buf, (size_t)n);
    } else {
        if (n < 0)
            ob_warn("console", "reading input: %s", uv_strerror((int)n));
        c->eof = true;
    }
    if (c->stopped) {
        maybe_finish(c);
        return;
    }
    process_input(c);
}

static void start_reading(struct console *c)
{
    if (c->reading || c->eof || c->stopped)
        return;
    if (c->type == UV_FILE) {
        uv_buf_t b = uv_buf_init(c->fs_buf, sizeof(c->fs_buf));

        if (c->fs_reading)
            return;
        c->fs_req.data = c;
        if (uv_fs_read(c->loop, &c->fs_req, c->fd, &b, 1, c->fs_offset, fs_read_cb) == 0)
            c->fs_reading = true;
        else
            c->eof = true;
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->in, alloc_cb, read_cb) == 0)
        c->reading = true;
    else
        c->eof = true;
}

static void stop_reading(struct console *c)
{
    if (c->type != UV_FILE && c->reading)
        uv_read_stop((uv_stream_t *)&c->in);
    c->reading = false;
}

static void resume_cb(uv_idle_t *h)
{
    struct console *c = h->data;

    uv_idle_stop(h);
    if (c->waiting && busy(c))
        return;
    c->waiting = false;
    process_input(c);
}

/* The core says nothing is in flight any more. Never process input from
 * inside the core's call stack: resume on the next loop turn. */
static void console_idle(struct ob_adapter *ad)
{
    struct console *c = ad->ctx;

    if (c->stopped || c->shutdown_sent)
        return;
    if (c->waiting || c->eof || c->quitting)
        uv_idle_start(&c->resume, resume_cb);
}

static int console_start(struct ob_adapter *ad)
{
    struct console *c = ad->ctx;
    int rc;

    c->loop = ad->loop; /* the core attaches the adapter to its loop */
    c->type = uv_guess_handle(c->fd);
    c->tty = c->type == UV_TTY;
    uv_idle_init(c->loop, &c->resume);
    c->resume.data = c;
    c->closing = 1;
    if (c->type == UV_TTY) {
        rc = uv_tty_init(c->loop, &c->in.tty, c->fd, 0);
    } else if (c->type == UV_NAMED_PIPE || c->type == UV_TCP) {
        rc = uv_pipe_init(c->loop, &c->in.pipe, 0);
        if (!rc)
            rc = uv_pipe_open(&c->in.pipe, c->fd);
    } else if (c->type == UV_FILE) {
        rc = 0;
    } else {
        ob_error("console", "standard input is not a terminal, pipe or file");
        return OB_EINVAL;
    }
    if (rc) {
        ob_error("console", "cannot read standard input: %s", uv_strerror(rc));
        return rc;
    }
    if (c->type != UV_FILE) {
        c->in.pipe.data = c;
        c->closing++;
    }
    if (c->tty) {
        fprintf(c->out,
                "opsbot console — you are console:%s. Type a request (\"help\"), or /help "
                "for console commands.\n",
                c->user);
        fflush(c->out);
    }
    start_reading(c);
    return 0;
}

static void console_stop(struct ob_adapter *ad)
{
    struct console *c = ad->ctx;

    if (c->stopped)
        return;
    c->stopped = true;
    stop_reading(c);
    if (c->type != UV_FILE && c->closing > 1)
        uv_close((uv_handle_t *)&c->in, NULL);
    uv_close((uv_handle_t *)&c->resume, NULL);
}

static void console_free(struct ob_adapter *ad)
{
    struct console *c = ad->ctx;

    free(c->buf);
    free(c->last_text);
    free(c);
}

static const struct ob_adapter_ops console_ops = {
    .name = "console",
    .flags = OB_ADAPTER_EPHEMERAL_IDS,
    .start = console_start,
    .post = console_post,
    .update = console_update,
    .react = console_react,
    .stop = console_stop,
    .free = console_free,
    .idle = console_idle,
};

int ob_console_new(struct ob_adapter **out, uv_loop_t *loop, const char *user, const char *channel,
                   int in_fd, FILE *out_file)
{
    struct console *c;

    if (!valid_name(user))
        return OB_EINVAL;
    c = ob_xcalloc(1, sizeof(*c));
    c->ad.ops = &console_ops;
    c->ad.loop = loop;
    c->ad.ctx = c;
    c->loop = loop;
    c->fd = in_fd;
    c->out = out_file;
    ob_strlcpy(c->user, user, sizeof(c->user));
    ob_strlcpy(c->channel, channel, sizeof(c->channel));
    ob_random_id("c", c->run, sizeof(c->run));
    *out = &c->ad;
    return 0;
}
