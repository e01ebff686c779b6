/* camera-pub's frame sources: test pattern, Y4M stream, V4L2 device (see source.h). */
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"

int source_open(source *s, const source_opts *o)
{
    const char *prog = o->prog;
    char err[256];
    memset(s, 0, sizeof *s);
    s->o = *o;
    s->fd = -1;
    s->v4l.fd = -1;
    if (o->kind == SRC_PATTERN) {
        shmbus_pixfmt fmt = o->format ? o->format : SHMBUS_PIXFMT_RGB24;
        if (shmbus_frame_init(&s->geom, fmt, o->width, o->height) != 0 ||
            pattern_init(&s->pat, o->width, o->height) != 0) {
            fprintf(stderr, "%s: cannot make %ux%u %s frames\n", prog, o->width, o->height,
                    shmbus_pixfmt_name(fmt));
            return 3;
        }
        s->geom.flags = SHMBUS_FRAME_FLAG_HAS_FPS | SHMBUS_FRAME_FLAG_HAS_SAR |
                        (fmt == SHMBUS_PIXFMT_GRAY8 ? SHMBUS_FRAME_FLAG_FULL_RANGE : 0);
        s->geom.sar_num = s->geom.sar_den = 1;
        s->geom.interlace = 'p';
        if (fmt == SHMBUS_PIXFMT_YUV420P)
            snprintf(s->geom.colorspace, sizeof s->geom.colorspace, "420jpeg");
        return 0;
    }
    if (o->kind == SRC_Y4M) {
        bool is_stdin = strcmp(o->input, "-") == 0;
        s->fd = is_stdin ? STDIN_FILENO : open(o->input, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (s->fd < 0 || fstat(s->fd, &st) != 0) {
            fprintf(stderr, "%s: %s: %s\n", prog, o->input, strerror(errno));
            return 3;
        }
        if (o->loop && !S_ISREG(st.st_mode)) {
            fprintf(stderr, "%s: %s: --loop needs a regular file\n", prog, o->input);
            return 3;
        }
        int rc = y4m_reader_open(&s->y4m, s->fd, app_stop_fd());
        if (rc == Y4M_EINTR)
            return 0;
        if (rc) {
            fprintf(stderr, "%s: %s: %s: %s\n", prog, is_stdin ? "stdin" : o->input,
                    y4m_strerror(rc), s->y4m.err);
            return 3;
        }
        const y4m_info *in = &s->y4m.info;
        if (in->extra_truncated || in->ignored)
            fprintf(stderr, "%s: note: %s%s\n", prog,
                    in->extra_truncated ? "X parameters beyond 79 bytes are dropped; " : "",
                    in->ignored ? "unknown header parameters are ignored" : "");
        shmbus_frame_init(&s->geom, in->format, in->width, in->height);
        y4m_to_frame(in, &s->geom);
        return 0;
    }
    uint32_t num = o->fps_given ? o->fps_num : 30, den = o->fps_given ? o->fps_den : 1;
    if (cam_v4l2_open(&s->v4l, o->input, o->format, o->width, o->height, num, den,
                      o->v4l2_read, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 3;
    }
    if (shmbus_frame_init_stride(&s->geom, s->v4l.format, s->v4l.width, s->v4l.height,
                                 s->v4l.stride) != 0 ||
        (s->v4l.sizeimage && s->v4l.sizeimage < s->geom.payload_size)) {
        fprintf(stderr, "%s: %s: unexpected geometry %ux%u stride %u size %u\n", prog,
                o->input, s->v4l.width, s->v4l.height, s->v4l.stride, s->v4l.sizeimage);
        return 3;
    }
    if (s->v4l.fps_num) {
        s->geom.flags |= SHMBUS_FRAME_FLAG_HAS_FPS;
        s->geom.fps_num = s->v4l.fps_num;
        s->geom.fps_den = s->v4l.fps_den;
    }
    fprintf(stderr, "%s: %s: capturing %ux%u %s%s\n", prog, o->input, s->v4l.width, s->v4l.height,
            shmbus_pixfmt_name(s->v4l.format),
            s->v4l.streaming ? " (mmap streaming: one copy per frame into shared memory)"
                             : " (read(): straight into shared memory)");
    return 0;
}

void source_close(source *s)
{
    pattern_free(&s->pat);
    if (s->fd > STDIN_FILENO)
        close(s->fd);
    if (s->v4l.fd > 0)
        cam_v4l2_close(&s->v4l);
}

int source_fill(source *s, shmbus_frame_hdr *h, uint64_t n, uint64_t *capture_ns)
{
    const source_opts *o = &s->o;
    char err[256];
    *capture_ns = 0;
    if (o->kind == SRC_PATTERN) {
        pattern_render(&s->pat, h, n);
        return FILL_OK;
    }
    uint8_t *pixels = shmbus_frame_plane_mut(h, 0);
    if (o->kind == SRC_Y4M) {
        for (int attempt = 0; attempt < 2; attempt++) {
            int rc = y4m_reader_next(&s->y4m, pixels, h->payload_size);
            *capture_ns = app_now_ns();
            if (rc == Y4M_OK)
                return FILL_OK;
            if (rc == Y4M_EINTR)
                return FILL_STOP;
            if (rc == Y4M_EOF && o->loop && s->y4m.frames > 0 && attempt == 0 &&
                lseek(s->fd, (off_t)s->y4m.data_start, SEEK_SET) >= 0)
                continue;
            if (rc == Y4M_EOF)
                return FILL_END;
            fprintf(stderr, "%s: %s: %s: %s\n", o->prog, o->input, y4m_strerror(rc),
                    s->y4m.err);
            return FILL_BAD_INPUT;
        }
        return FILL_END;
    }
    size_t bytes;
    int rc;
    if (s->v4l.streaming) {
        unsigned idx;
        rc = cam_v4l2_dequeue(&s->v4l, app_stop_fd(), &idx, &bytes, capture_ns, err, sizeof err);
        if (rc == 0) {
            /* the one copy of this path: the driver's buffer is not in the pool */
            size_t n_copy = bytes < h->payload_size ? bytes : h->payload_size;
            memcpy(pixels, s->v4l.buf[idx].ptr, n_copy);
            memset(pixels + n_copy, 0, h->payload_size - n_copy);
            rc = cam_v4l2_requeue(&s->v4l, idx, err, sizeof err);
        }
    } else {
        rc = cam_v4l2_read(&s->v4l, app_stop_fd(), pixels, h->payload_size, &bytes, capture_ns,
                           err, sizeof err);
        if (rc == 0 && bytes < h->payload_size) /* a short frame: no stale pixels */
            memset(pixels + bytes, 0, h->payload_size - bytes);
    }
    if (rc == 1)
        return FILL_STOP;
    if (rc != 0) {
        fprintf(stderr, "%s: %s: %s\n", o->prog, o->input, err);
        return FILL_BAD_INPUT;
    }
    return FILL_OK;
}
