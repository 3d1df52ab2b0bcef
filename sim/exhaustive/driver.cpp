// tensorforge exhaustive driver: runs one generated stream core in Verilator at native speed.
//
// Built by tensorforge.sim.exhaustive.harness with
//   verilator --cc --exe --build -O3 TOP.v driver.cpp   (+ the generated tf_ports.h)
// tf_ports.h (generated per configuration) defines the model class TF_MODEL, TF_NIN input fields,
// TF_NOUT output fields, TF_CLOCKED, the port members TF_I_VALID... (Verilator mangles `__`), tf_set_input(model, const uint64_t* in) and
// tf_get_output(model, uint64_t* out), and the output containers' byte sizes TF_OUT_BYTES[].
//
// Usage:
//   driver grid  A_LO A_HI B_LO B_HI CHUNK STALL SEED C0 [C1 ...]
//       for each c in C0.. : for a in [A_LO, A_HI) : for b in [B_LO, B_HI) : vector (a, b, c)
//       (fields 0, 1, 2 of the input payload; a core with two input fields ignores c)
//   driver file  PATH CHUNK STALL SEED
//       vectors from PATH: records of TF_NIN little-endian uint64 values
// STALL (0..1): probability of an input gap / of o.ready low per cycle (0 = full throughput).
// Output on stdout, chunk by chunk (CHUNK vectors, the last one shorter): for each output
// field, its values in vector order, each in TF_OUT_BYTES[f] little-endian bytes.
// A JSON line with counts and the time spent in the model goes to stderr at the end.
// Exit status: 0 done, 2 bad arguments, 3 protocol trouble (deadlock / extra output).

#include <chrono>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "verilated.h"
#include "tf_ports.h"

#if VM_COVERAGE
#include "verilated_cov.h"
#endif

double sc_time_stamp() { return 0; }

namespace {

struct Source {
    // grid
    bool grid = true;
    uint64_t a_lo = 0, a_hi = 0, b_lo = 0, b_hi = 0;
    std::vector<uint64_t> cs;
    uint64_t ci = 0, a = 0, b = 0;
    // file
    FILE* f = nullptr;
    uint64_t total = 0, produced = 0;

    bool next(uint64_t* in) {
        if (produced >= total) return false;
        if (grid) {
            in[0] = a;
            if (TF_NIN > 1) in[1] = b;
            if (TF_NIN > 2) in[2] = cs[ci];
            for (int k = 3; k < TF_NIN; ++k) in[k] = 0;
            if (++b == b_hi) { b = b_lo; if (++a == a_hi) { a = a_lo; ++ci; } }
        } else {
            if (fread(in, sizeof(uint64_t), TF_NIN, f) != (size_t)TF_NIN) return false;
        }
        ++produced;
        return true;
    }
};

struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x1234567ull) {}
    uint64_t next() { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
    bool chance(uint32_t threshold) { return (uint32_t)(next() >> 32) < threshold; }
};

uint64_t parse_u64(const char* text) { return strtoull(text, nullptr, 0); }

}  // namespace

int main(int argc, char** argv) {
    Verilated::commandArgs(1, argv);
    if (argc < 2) { fprintf(stderr, "usage: driver grid|file ...\n"); return 2; }
    Source src;
    uint64_t chunk = 0; double stall = 0; uint64_t seed = 1;
    if (!strcmp(argv[1], "grid")) {
        if (argc < 10) { fprintf(stderr, "usage: driver grid A_LO A_HI B_LO B_HI CHUNK STALL SEED C...\n"); return 2; }
        src.a_lo = parse_u64(argv[2]); src.a_hi = parse_u64(argv[3]);
        src.b_lo = parse_u64(argv[4]); src.b_hi = parse_u64(argv[5]);
        chunk = parse_u64(argv[6]); stall = atof(argv[7]); seed = parse_u64(argv[8]);
        for (int k = 9; k < argc; ++k) src.cs.push_back(parse_u64(argv[k]));
        if (src.a_hi <= src.a_lo || src.b_hi <= src.b_lo) { fprintf(stderr, "empty grid\n"); return 2; }
        src.a = src.a_lo; src.b = src.b_lo;
        src.total = (src.a_hi - src.a_lo) * (src.b_hi - src.b_lo) * src.cs.size();
    } else if (!strcmp(argv[1], "file")) {
        if (argc != 6) { fprintf(stderr, "usage: driver file PATH CHUNK STALL SEED\n"); return 2; }
        src.grid = false;
        src.f = fopen(argv[2], "rb");
        if (!src.f) { perror(argv[2]); return 2; }
        fseek(src.f, 0, SEEK_END);
        src.total = (uint64_t)ftell(src.f) / (sizeof(uint64_t) * TF_NIN);
        fseek(src.f, 0, SEEK_SET);
        chunk = parse_u64(argv[3]); stall = atof(argv[4]); seed = parse_u64(argv[5]);
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[1]); return 2;
    }
    if (chunk == 0) { fprintf(stderr, "CHUNK must be positive\n"); return 2; }
    const uint32_t threshold = (uint32_t)(stall * 4294967296.0 > 4294967295.0 ? 4294967295.0 : stall * 4294967296.0);
    Rng rng(seed);

    VerilatedContext* ctx = new VerilatedContext;
    TF_MODEL* top = new TF_MODEL{ctx};

    // output buffers, field-major, one chunk
    std::vector<std::vector<uint8_t>> obuf(TF_NOUT);
    for (int f = 0; f < TF_NOUT; ++f) obuf[f].resize(chunk * TF_OUT_BYTES[f]);
    uint64_t in_chunk = 0, emitted = 0, accepted = 0;
    double io_seconds = 0;   // time blocked writing outputs (the reader's speed, not the model's)
    auto flush = [&]() {
        auto w0 = std::chrono::steady_clock::now();
        for (int f = 0; f < TF_NOUT; ++f) fwrite(obuf[f].data(), 1, in_chunk * TF_OUT_BYTES[f], stdout);
        fflush(stdout);
        io_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
        in_chunk = 0;
    };

    uint64_t in[TF_NIN > 0 ? TF_NIN : 1] = {0};
    uint64_t out[TF_NOUT > 0 ? TF_NOUT : 1] = {0};
    bool have = src.next(in);
    uint64_t cycles = 0, idle = 0;
    auto t0 = std::chrono::steady_clock::now();
    std::clock_t cpu0 = std::clock();

#if TF_CLOCKED
    top->rst = 1; top->TF_I_VALID = 0; top->TF_O_READY = 0;
    top->clk = 0; top->eval(); top->clk = 1; top->eval();
    top->clk = 0; top->eval(); top->clk = 1; top->eval();
    top->rst = 0;
#endif
    const uint64_t watchdog = 100000;
    while (emitted < src.total) {
        bool gap = threshold && rng.chance(threshold);
        bool ready = !(threshold && rng.chance(threshold));
        top->TF_I_VALID = (have && !gap) ? 1 : 0;
        if (have) tf_set_input(top, in);
        top->TF_O_READY = ready ? 1 : 0;
#if TF_CLOCKED
        top->clk = 0;
#endif
        top->eval();
        bool took = top->TF_I_VALID && top->TF_I_READY;
        if (top->TF_O_VALID && top->TF_O_READY) {
            if (emitted >= accepted + (took ? 1 : 0)) {
                // more outputs than accepted inputs
                fprintf(stderr, "{\"error\": \"output handshake without a pending input at cycle %llu\"}\n",
                        (unsigned long long)cycles);
                return 3;
            }
            tf_get_output(top, out);
            for (int f = 0; f < TF_NOUT; ++f)
                memcpy(obuf[f].data() + in_chunk * TF_OUT_BYTES[f], &out[f], TF_OUT_BYTES[f]);
            ++in_chunk; ++emitted; idle = 0;
            if (in_chunk == chunk) flush();
        } else if (++idle > watchdog) {
            fprintf(stderr, "{\"error\": \"no output for %llu cycles after %llu outputs (deadlock?)\"}\n",
                    (unsigned long long)watchdog, (unsigned long long)emitted);
            return 3;
        }
        if (took) { ++accepted; have = src.next(in); }
#if TF_CLOCKED
        top->clk = 1;
        top->eval();
#endif
        ++cycles;
    }
    if (in_chunk) flush();
    fflush(stdout);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double cpu_seconds = double(std::clock() - cpu0) / CLOCKS_PER_SEC;   // includes the (small) write cost
#if VM_COVERAGE
    const char* cov = getenv("TF_COVERAGE_FILE");
    ctx->coveragep()->write(cov ? cov : "coverage.dat");
#endif
    top->final();
    fprintf(stderr, "{\"vectors\": %llu, \"cycles\": %llu, \"seconds\": %.6f, \"io_seconds\": %.6f, "
            "\"cpu_seconds\": %.6f}\n",
            (unsigned long long)emitted, (unsigned long long)cycles, seconds, io_seconds, cpu_seconds);
    delete top;
    delete ctx;
    return 0;
}
