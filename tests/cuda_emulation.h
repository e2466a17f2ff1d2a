// The CUDA names a gather kernel uses, for g++: tests/cuda_emulation.py compiles a project
// CUDA source, unchanged, after this header, and runs its grid one thread at a time.
//
// Valid only for kernels whose threads never talk to each other: no __shared__ memory, no
// __syncthreads, no warp functions, no atomics (this header leaves those undefined, so a
// kernel that uses one fails to compile here rather than being emulated wrongly). Each
// thread is run to completion before the next starts, in block order then thread order.
#pragma once

#include <cmath>
#include <cstdint>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// (__restrict__ is a g++ keyword as well)

struct tg_dim3 {
    unsigned int x, y, z;
};

// the built-in variables of the thread being run: set by the launchers before each call
static tg_dim3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0};
static tg_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};

static inline void tg_emulation_start(unsigned int grid, unsigned int block) {
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
}

static inline void tg_emulation_thread(unsigned int b, unsigned int t) {
    blockIdx = {b, 0, 0};
    threadIdx = {t, 0, 0};
}
