/* shmbus-bench camera: camera frames (rgb24 1080p and 4K) from one publisher to 1, 2 and 4
 * subscriber processes: the highest frame rate every subscriber receives without loss, and
 * what a frame costs the publisher in CPU time, shmbus next to plain nng pub/sub copying the
 * frame. The processes and transports are bench_fanout.c's and bench_transport.c's.
 */
#include <stdio.h>
#include <unistd.h>

#include "bench_fanout_defs.h"
#include "shmbus.h"

#define NFRAMES 2
#define NSUBCOUNTS 3
#define WARMUP 40    /* frames one at a time first: every block mapped, caches settled */
#define LAT_FRAMES 50 /* then one at a time, timed: a frame's latency (JSON only) */

static const struct frame {
    const char *name;
    uint64_t size;
} frames[NFRAMES] = {{"1080p", 1920ull * 1080 * 3}, {"4K", 3840ull * 2160 * 3}};
static const int subcounts[NSUBCOUNTS] = {1, 2, 4};
static const unsigned masks[NSUBCOUNTS] = {FO_CLASSIC, FO_CLASSIC, FO_CLASSIC};

static void frame_name(const fo_result *x, int f, char *buf, size_t len)
{
    (void)x;
    snprintf(buf, len, "%s", frames[f].name);
}

static void print_table(const fo_run *r, double seconds)
{
    printf("shmbus-bench camera: rgb24 frames, every byte written (memset) by the publisher;\n"
           "%.1f s per row, at most %d frames in flight; %ld CPUs online\n\n", seconds,
           FO_WINDOW, sysconf(_SC_NPROCESSORS_ONLN));
    printf("%11s  %-28s  %-28s  %s\n", "", "---------- shmbus ----------",
           "--------- nng-copy ---------", "- shm vs nng -");
    printf("%6s %4s  %8s %8s %9s   %8s %8s %9s   %6s %6s\n", "frame", "subs", "fps", "pub us",
           "sub us", "fps", "pub us", "sub us", "fps", "pub us");
    for (int s = 0; s < NSUBCOUNTS; s++)
        for (int f = 0; f < NFRAMES; f++) {
            const fo_result *a = fo_find(r, FO_SHMBUS, s, f), *b = fo_find(r, FO_NNG, s, f);
            if (!a && !b)
                continue;
            char c1[40] = "", c2[40] = "", q[24] = "";
            if (a)
                snprintf(c1, sizeof c1, "%8.1f %8.0f %9.1f%s", a->msgs_per_s, a->pub_cpu_ns / 1e3,
                         a->sub_cpu_ns / 1e3, fo_lost(a) ? "!" : "");
            if (b)
                snprintf(c2, sizeof c2, "%8.1f %8.0f %9.1f%s", b->msgs_per_s, b->pub_cpu_ns / 1e3,
                         b->sub_cpu_ns / 1e3, fo_lost(b) ? "!" : "");
            if (a && b)
                snprintf(q, sizeof q, "%5.2fx %5.2fx", a->msgs_per_s / b->msgs_per_s,
                         a->pub_cpu_ns / b->pub_cpu_ns);
            printf("%6s %4d  %-28s  %-28s  %s\n", frames[f].name, subcounts[s], c1, c2, q);
        }
    printf("\nfps: frames per second received by every subscriber. pub us: CPU time of the\n"
           "publisher process (all its threads, the frame's memset included) per frame.\n"
           "sub us: CPU time per frame of one subscriber process, mean over them.\n"
           "shm vs nng: shmbus fps over nng-copy fps, shmbus pub us over nng-copy pub us.\n");
    if (!fo_print_losses(r, "\n! loss (summed over subscribers, warm-up included):\n", 5,
                         frame_name))
        printf("loss: none (every subscriber got every frame; shmbus counted 0 expired, "
               "0 dropped)\n");
}

static void print_object(jsonw *w, const fo_result *x, int f)
{
    jsonw_str(w, "frame", frames[f].name);
    jsonw_double(w, "fps", x->msgs_per_s);
    jsonw_u64(w, "frames", x->tput_msgs);
    jsonw_double(w, "p50_us", x->p50_ns / 1e3);
    jsonw_double(w, "p99_us", x->p99_ns / 1e3);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus-bench camera [--json] [--seconds S]\n\n"
            "Camera frames, rgb24 1080p (1920x1080x3 = 6 220 800 bytes) and 4K (3840x2160x3 =\n"
            "24 883 200 bytes), from one publisher to 1, 2 and 4 subscriber processes,\n"
            "through shmbus (loan, write in place, publish a descriptor) and through plain\n"
            "nng pub/sub on ipc:// copying the frame (nng-copy).\n\n"
            "For both, the publisher writes every byte of every frame with memset, the cost\n"
            "of a camera producing it, and each subscriber reads the first and last byte.\n"
            "Frames go back to back with at most %d not yet received by every subscriber;\n"
            "fps is what every subscriber received per second (a short run first sets the\n"
            "number of frames to fill S seconds). Publisher CPU per frame is\n"
            "CLOCK_PROCESS_CPUTIME_ID of the publisher process (nng's threads included)\n"
            "over the frames. Any loss is reported. Uses about 750 MiB of /dev/shm while\n"
            "it runs.\n\n"
            "  --seconds S  measuring time per row (default 3); 12 rows, plus warm-up\n"
            "  --json       print only a JSON array, one object per row\n",
            FO_WINDOW);
}

int bench_camera(int argc, char **argv)
{
    bench_opts o = {.takes = BENCH_OPT_SECONDS, .max_seconds = 3600, .seconds = 3};
    int status = bench_parse_opts(argc, argv, &o, usage);
    if (status >= 0)
        return status;

    fo_step steps[NFRAMES];
    for (int f = 0; f < NFRAMES; f++)
        steps[f] = (fo_step){.size = frames[f].size, .warmup = WARMUP, .lat_count = LAT_FRAMES,
                             .seconds = o.seconds, .transports = FO_CLASSIC};
    static fo_run run;
    status = fo_run_all(&run, "camera", steps, NFRAMES, subcounts, masks, NSUBCOUNTS);
    if (fo_run_measured(&run)) { /* after a failure, what the groups before it measured */
        if (o.json)
            fo_print_json(&run, "frame", print_object);
        else
            print_table(&run, o.seconds);
    }
    return status;
}
