// ptxsim's own tests: hand-written PTX whose results plain C++ loops predict,
// for the parts the kernels of synthc lean on (address arithmetic, shared
// memory and barriers, warp shuffles, mma.sync fragment layouts, f32->bf16
// rounding), and the errors it must raise (out-of-bounds accesses, deadlocks,
// unknown instructions).

#include "test/ptxsim/PtxSim.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace synth::ptxsim {
namespace {

// out[i] = in[i] * 2 + tid.x, i = ctaid.x * ntid.x + tid.x, guarded by n.
constexpr const char *kScale = R"(
.version 8.0
.target sm_90a
.address_size 64
.visible .entry scale(
	.param .u64 .ptr .align 1 scale_param_0,
	.param .u64 .ptr .align 1 scale_param_1,
	.param .u64 scale_param_2
)
.maxntid 64, 1, 1
{
	.reg .pred 	%p<2>;
	.reg .b32 	%r<8>;
	.reg .b64 	%rd<10>;
	ld.param.b64 	%rd1, [scale_param_0];
	cvta.to.global.u64 	%rd2, %rd1;
	ld.param.b64 	%rd3, [scale_param_1];
	cvta.to.global.u64 	%rd4, %rd3;
	ld.param.b64 	%rd9, [scale_param_2];
	mov.u32 	%r1, %tid.x;
	mov.u32 	%r2, %ctaid.x;
	mov.u32 	%r3, %ntid.x;
	mad.lo.s32 	%r4, %r2, %r3, %r1;
	cvt.u64.u32 	%rd5, %r4;
	setp.ge.u64 	%p1, %rd5, %rd9;
	@%p1 bra 	$L__done;
	mul.wide.u32 	%rd6, %r4, 4;
	add.s64 	%rd7, %rd2, %rd6;
	ld.global.b32 	%r5, [%rd7];
	mov.b32 	%r6, %r5;
	add.rn.f32 	%r6, %r6, %r6;
	cvt.rn.f32.u32 	%r7, %r1;
	add.rn.f32 	%r6, %r6, %r7;
	add.s64 	%rd8, %rd4, %rd6;
	st.global.b32 	[%rd8], %r6;
$L__done:
	ret;
}
)";

TEST(PtxSim, GridAndGuardedStores) {
  auto module = Module::parse(kScale);
  ASSERT_TRUE(module.ok()) << module.status();
  const Kernel *kernel = (*module)->kernel("scale");
  ASSERT_NE(kernel, nullptr);
  EXPECT_EQ(maxThreadsPerBlock(*kernel), 64);
  Memory memory;
  const uint64_t n = 100;
  float *in = static_cast<float *>(memory.allocate(n * 4));
  float *out = static_cast<float *>(memory.allocate(n * 4));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (uint64_t i = 0; i < n; ++i) {
    in[i] = dist(rng);
  }
  void *params[] = {&in, &out, const_cast<uint64_t *>(&n)};
  ASSERT_TRUE(launch(*kernel, {4, 1, 1}, {32, 1, 1}, params, memory).ok());
  for (uint64_t i = 0; i < n; ++i) {
    EXPECT_EQ(out[i], in[i] * 2 + float(i % 32)) << i;
  }
}

TEST(PtxSim, OutOfBoundsGlobalAccessIsAnError) {
  auto module = Module::parse(kScale);
  ASSERT_TRUE(module.ok());
  Memory memory;
  const uint64_t n = 100; // claims 100 elements, has 64
  float *in = static_cast<float *>(memory.allocate(64 * 4));
  float *out = static_cast<float *>(memory.allocate(n * 4));
  void *params[] = {&in, &out, const_cast<uint64_t *>(&n)};
  absl::Status status = launch(*(*module)->kernel("scale"), {4, 1, 1},
                               {32, 1, 1}, params, memory);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("global load of 4 bytes"), std::string::npos)
      << status;
  EXPECT_NE(status.message().find("block (2,0,0), thread (0,0,0)"),
            std::string::npos)
      << status;
}

// Reverses 64 floats through shared memory (needs the barrier), then each
// warp sums its values with a butterfly shuffle: out[i] = warp sum of the
// reversed input.
constexpr const char *kReverseSum = R"(
.version 8.0
.target sm_80
.address_size 64
.visible .entry reverse_sum(
	.param .u64 .ptr .align 1 p0,
	.param .u64 .ptr .align 1 p1
)
.maxntid 64, 1, 1
{
	.reg .b32 	%r<20>;
	.reg .b64 	%rd<20>;
	.reg .pred 	%p<4>;
	.shared .align 4 .b8 buffer[256];
	ld.param.b64 	%rd1, [p0];
	ld.param.b64 	%rd2, [p1];
	mov.u32 	%r1, %tid.x;
	mul.wide.u32 	%rd3, %r1, 4;
	add.s64 	%rd4, %rd1, %rd3;
	ld.global.b32 	%r2, [%rd4];
	mov.b64 	%rd5, buffer;
	add.s64 	%rd6, %rd5, %rd3;
	st.shared.b32 	[%rd6], %r2;
	bar.sync 	0;
	sub.s32 	%r3, 63, %r1;
	mul.wide.u32 	%rd7, %r3, 4;
	add.s64 	%rd8, %rd5, %rd7;
	ld.shared.b32 	%r4, [%rd8];
	shfl.sync.bfly.b32 	%r5|%p1, %r4, 16, 31, -1;
	add.rn.f32 	%r6, %r4, %r5;
	shfl.sync.bfly.b32 	%r7, %r6, 8, 31, -1;
	add.rn.f32 	%r8, %r6, %r7;
	shfl.sync.bfly.b32 	%r9, %r8, 4, 31, -1;
	add.rn.f32 	%r10, %r8, %r9;
	shfl.sync.bfly.b32 	%r11, %r10, 2, 31, -1;
	add.rn.f32 	%r12, %r10, %r11;
	shfl.sync.bfly.b32 	%r13, %r12, 1, 31, -1;
	add.rn.f32 	%r14, %r12, %r13;
	add.s64 	%rd9, %rd2, %rd3;
	st.global.b32 	[%rd9], %r14;
	ret;
}
)";

TEST(PtxSim, SharedMemoryBarrierAndShuffles) {
  auto module = Module::parse(kReverseSum);
  ASSERT_TRUE(module.ok()) << module.status();
  const Kernel &kernel = *(*module)->kernel("reverse_sum");
  EXPECT_EQ(sharedBytes(kernel), 256);
  Memory memory;
  float *in = static_cast<float *>(memory.allocate(64 * 4));
  float *out = static_cast<float *>(memory.allocate(64 * 4));
  for (int i = 0; i < 64; ++i) {
    in[i] = float(i * i % 17) - 8; // small integers: sums are exact
  }
  void *params[] = {&in, &out};
  ASSERT_TRUE(launch(kernel, {1, 1, 1}, {64, 1, 1}, params, memory).ok());
  for (int i = 0; i < 64; ++i) {
    float expected = 0;
    int warp = i / 32;
    for (int lane = 0; lane < 32; ++lane) {
      expected += in[63 - (warp * 32 + lane)];
    }
    EXPECT_EQ(out[i], expected) << i;
  }
}

// Runs kReverseSum on `threads` threads with the barrier skipped by threads
// whose id is at least `skipFrom`.
absl::Status runWithBarrierSkipped(unsigned skipFrom, unsigned threads) {
  std::string ptx = kReverseSum;
  size_t at = ptx.find("\tbar.sync");
  ptx.insert(at, "\tsetp.ge.u32 \t%p2, %r1, " + std::to_string(skipFrom) +
                     ";\n\t@%p2 bra \t$L__skip;\n");
  at = ptx.find("\tsub.s32");
  ptx.insert(at, "$L__skip:\n");
  auto module = Module::parse(ptx);
  if (!module.ok()) {
    return module.status();
  }
  Memory memory;
  float *in = static_cast<float *>(memory.allocate(64 * 4));
  float *out = static_cast<float *>(memory.allocate(64 * 4));
  void *params[] = {&in, &out};
  return launch(*(*module)->kernel("reverse_sum"), {1, 1, 1}, {threads, 1, 1},
                params, memory);
}

// The barrier only in the first warp's path: the second warp never arrives.
TEST(PtxSim, DivergentBarrierIsAnError) {
  absl::Status status = runWithBarrierSkipped(32, 64);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("exited without reaching the barrier"),
            std::string::npos)
      << status;
}

// Lanes 16.. skip the barrier and wait at the first shuffle, which needs the
// whole warp; lanes 0..15 wait at the barrier: neither can proceed.
TEST(PtxSim, WarpSplitBetweenBarrierAndShuffleIsADeadlock) {
  absl::Status status = runWithBarrierSkipped(16, 32);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("deadlock in block (0,0,0)"),
            std::string::npos)
      << status;
}

// One m16n8k16 bf16 MMA: each lane loads its A, B and C fragments from
// global memory in the PTX ISA's layout and stores D the same way; the test
// lays the matrices out with that layout written independently here.
constexpr const char *kMma = R"(
.version 8.0
.target sm_90a
.address_size 64
.visible .entry mma(
	.param .u64 .ptr .align 1 pa,
	.param .u64 .ptr .align 1 pb,
	.param .u64 .ptr .align 1 pc,
	.param .u64 .ptr .align 1 pd
)
.maxntid 32, 1, 1
{
	.reg .b32 	%r<30>;
	.reg .b64 	%rd<20>;
	ld.param.b64 	%rd1, [pa];
	ld.param.b64 	%rd2, [pb];
	ld.param.b64 	%rd3, [pc];
	ld.param.b64 	%rd4, [pd];
	mov.u32 	%r1, %laneid;
	mul.wide.u32 	%rd5, %r1, 16;
	add.s64 	%rd6, %rd1, %rd5;
	ld.global.v4.b32 	{%r2, %r3, %r4, %r5}, [%rd6];
	mul.wide.u32 	%rd7, %r1, 8;
	add.s64 	%rd8, %rd2, %rd7;
	ld.global.v2.b32 	{%r6, %r7}, [%rd8];
	add.s64 	%rd9, %rd3, %rd5;
	ld.global.v4.b32 	{%r8, %r9, %r10, %r11}, [%rd9];
	mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%r12, %r13, %r14, %r15}, {%r2, %r3, %r4, %r5}, {%r6, %r7}, {%r8, %r9, %r10, %r11};
	add.s64 	%rd10, %rd4, %rd5;
	st.global.v4.b32 	[%rd10], {%r12, %r13, %r14, %r15};
	ret;
}
)";

uint16_t toBf16(float x) { // exact for the values used: no rounding
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  return static_cast<uint16_t>(bits >> 16);
}

TEST(PtxSim, MmaM16n8k16Bf16FragmentLayout) {
  auto module = Module::parse(kMma);
  ASSERT_TRUE(module.ok()) << module.status();
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> small(-8, 8);
  float A[16][16], B[16][8], C[16][8];
  for (auto &row : A) {
    for (float &x : row) {
      x = small(rng) / 4.0f;
    }
  }
  for (auto &row : B) {
    for (float &x : row) {
      x = small(rng) / 4.0f;
    }
  }
  for (auto &row : C) {
    for (float &x : row) {
      x = float(small(rng));
    }
  }
  Memory memory;
  auto *a = static_cast<uint16_t *>(memory.allocate(32 * 8 * 2));
  auto *b = static_cast<uint16_t *>(memory.allocate(32 * 4 * 2));
  auto *c = static_cast<float *>(memory.allocate(32 * 4 * 4));
  auto *d = static_cast<float *>(memory.allocate(32 * 4 * 4));
  // PTX ISA, mma.m16n8k16 (.bf16): groupID = lane / 4,
  // threadID_in_group = lane % 4.
  // A: a_i, i in 0..7: row = groupID (+8 for i in {2,3,6,7}),
  //    col = 2 * threadID_in_group + (i & 1) (+8 for i >= 4).
  // B: b_i, i in 0..3: row (k) = 2 * threadID_in_group + (i & 1) (+8 for
  //    i >= 2), col (n) = groupID.
  // C/D: c_i: row = groupID (+8 for i >= 2), col = 2 * threadID_in_group +
  //    (i & 1).
  for (int lane = 0; lane < 32; ++lane) {
    int g = lane / 4, t = lane % 4;
    for (int i = 0; i < 8; ++i) {
      int row = g + ((i == 2 || i == 3 || i == 6 || i == 7) ? 8 : 0);
      int col = 2 * t + (i & 1) + (i >= 4 ? 8 : 0);
      a[lane * 8 + i] = toBf16(A[row][col]);
    }
    for (int i = 0; i < 4; ++i) {
      b[lane * 4 + i] = toBf16(B[2 * t + (i & 1) + (i >= 2 ? 8 : 0)][g]);
    }
    for (int i = 0; i < 4; ++i) {
      c[lane * 4 + i] = C[g + (i >= 2 ? 8 : 0)][2 * t + (i & 1)];
    }
  }
  void *params[] = {&a, &b, &c, &d};
  absl::Status status =
      launch(*(*module)->kernel("mma"), {1, 1, 1}, {32, 1, 1}, params, memory);
  ASSERT_TRUE(status.ok()) << status;
  for (int lane = 0; lane < 32; ++lane) {
    int g = lane / 4, t = lane % 4;
    for (int i = 0; i < 4; ++i) {
      int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
      float expected = C[row][col];
      for (int k = 0; k < 16; ++k) {
        expected += A[row][k] * B[k][col];
      }
      EXPECT_EQ(d[lane * 4 + i], expected) << "lane " << lane << " i " << i;
    }
  }
}

// cvt.rn.bf16.f32 rounds to nearest even; bf16 -> f32 is exact.
constexpr const char *kBf16 = R"(
.version 8.0
.target sm_90a
.address_size 64
.visible .entry round(
	.param .u64 .ptr .align 1 p0,
	.param .u64 .ptr .align 1 p1
)
{
	.reg .b16 	%rs<4>;
	.reg .b32 	%r<4>;
	.reg .b64 	%rd<8>;
	ld.param.b64 	%rd1, [p0];
	ld.param.b64 	%rd2, [p1];
	mov.u32 	%r1, %tid.x;
	mul.wide.u32 	%rd3, %r1, 4;
	add.s64 	%rd4, %rd1, %rd3;
	ld.global.b32 	%r2, [%rd4];
	cvt.rn.bf16.f32 	%rs1, %r2;
	cvt.f32.bf16 	%r3, %rs1;
	add.s64 	%rd5, %rd2, %rd3;
	st.global.b32 	[%rd5], %r3;
	ret;
}
)";

TEST(PtxSim, Bf16RoundsToNearestEven) {
  auto module = Module::parse(kBf16);
  ASSERT_TRUE(module.ok()) << module.status();
  Memory memory;
  auto *in = static_cast<float *>(memory.allocate(4 * 4));
  auto *out = static_cast<float *>(memory.allocate(4 * 4));
  // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: even is 1.
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6.
  in[0] = 1.0f + std::ldexp(1.0f, -8);
  in[1] = 1.0f + 3 * std::ldexp(1.0f, -8);
  in[2] = 1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20);
  in[3] = -3.0f;
  void *params[] = {&in, &out};
  ASSERT_TRUE(
      launch(*(*module)->kernel("round"), {1, 1, 1}, {4, 1, 1}, params, memory)
          .ok());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 1.0f + std::ldexp(1.0f, -6));
  EXPECT_EQ(out[2], 1.0f + std::ldexp(1.0f, -7));
  EXPECT_EQ(out[3], -3.0f);
}

// cvt.rn.bf16x2.f32 d, a, b packs a into the upper half, b into the lower.
constexpr const char *kPack = R"(
.version 8.0
.target sm_90a
.address_size 64
.visible .entry pack(
	.param .u64 .ptr .align 1 p0,
	.param .u64 .ptr .align 1 p1
)
{
	.reg .b32 	%r<4>;
	.reg .b64 	%rd<4>;
	ld.param.b64 	%rd1, [p0];
	ld.param.b64 	%rd2, [p1];
	ld.global.v2.b32 	{%r1, %r2}, [%rd1];
	cvt.rn.bf16x2.f32 	%r3, %r1, %r2;
	st.global.b32 	[%rd2], %r3;
	ret;
}
)";

TEST(PtxSim, Bf16x2PacksTheFirstSourceHigh) {
  auto module = Module::parse(kPack);
  ASSERT_TRUE(module.ok()) << module.status();
  Memory memory;
  auto *in = static_cast<float *>(memory.allocate(2 * 4));
  auto *out = static_cast<uint32_t *>(memory.allocate(4));
  in[0] = 1.5f;  // bf16 0x3fc0
  in[1] = -2.0f; // bf16 0xc000
  void *params[] = {&in, &out};
  ASSERT_TRUE(
      launch(*(*module)->kernel("pack"), {1, 1, 1}, {1, 1, 1}, params, memory)
          .ok());
  EXPECT_EQ(*out, 0x3fc0c000u);
}

// bfe (signed, field past the msb), bfe (unsigned), shfl.idx with a lane
// index >= 32 (the ISA uses its low 5 bits), vote.all on a partial warp.
constexpr const char *kBits = R"(
.version 8.0
.target sm_90a
.address_size 64
.visible .entry bits(
	.param .u64 .ptr .align 1 p0
)
{
	.reg .pred 	%p<3>;
	.reg .b32 	%r<12>;
	.reg .b64 	%rd<4>;
	ld.param.b64 	%rd1, [p0];
	mov.u32 	%r1, %tid.x;
	mov.b32 	%r2, -2147483648;
	bfe.s32 	%r3, %r2, 31, 4;
	mov.b32 	%r4, -1412623820;
	bfe.u32 	%r5, %r4, 8, 12;
	shfl.sync.idx.b32 	%r6|%p1, %r1, 33, 31, -1;
	setp.lt.u32 	%p2, %r1, 100;
	vote.sync.all.pred 	%p2, %p2, -1;
	selp.b32 	%r7, 1, 0, %p2;
	mul.wide.u32 	%rd2, %r1, 16;
	add.s64 	%rd3, %rd1, %rd2;
	st.global.v4.b32 	[%rd3], {%r3, %r5, %r6, %r7};
	ret;
}
)";

TEST(PtxSim, BitFieldsShuffleLaneWrapAndVoteOverLiveLanes) {
  auto module = Module::parse(kBits);
  ASSERT_TRUE(module.ok()) << module.status();
  Memory memory;
  auto *out = static_cast<uint32_t *>(memory.allocate(20 * 16));
  void *params[] = {&out};
  // 20 threads: a partial warp, whose 12 missing lanes must not spoil
  // vote.all.
  absl::Status status =
      launch(*(*module)->kernel("bits"), {1, 1, 1}, {20, 1, 1}, params, memory);
  ASSERT_TRUE(status.ok()) << status;
  for (int lane = 0; lane < 20; ++lane) {
    EXPECT_EQ(out[lane * 4 + 0], 0xffffffffu) << lane; // sign-filled
    EXPECT_EQ(out[lane * 4 + 1], 0xd12u) << lane;      // 0xabcd1234 bits 8..19
    EXPECT_EQ(out[lane * 4 + 2], 1u) << lane;          // lane 33 & 31
    EXPECT_EQ(out[lane * 4 + 3], 1u) << lane;          // all live lanes true
  }
}

TEST(PtxSim, UndeclaredAndSpecialRegistersItDoesNotKnowAreRejected) {
  std::string ptx = kBf16;
  ptx.replace(ptx.find("%tid.x"), 6, "%lanemask_lt");
  auto module = Module::parse(ptx);
  ASSERT_FALSE(module.ok());
  EXPECT_NE(module.status().message().find(
                "unknown register or special register %lanemask_lt"),
            std::string::npos)
      << module.status();
}

// fma.rn.f16 rounds the exact a * b + c once: 1 + 2^-11 + 2^-31 goes up to
// 1 + 2^-10 (through f32 it would tie at 1 + 2^-11 and go down to 1).
constexpr const char *kHalfFma = R"(
.version 8.0
.target sm_90a
.address_size 64
.visible .entry half_fma(
	.param .u64 .ptr .align 1 p0
)
{
	.reg .b16 	%rs<5>;
	.reg .b64 	%rd<2>;
	ld.param.b64 	%rd1, [p0];
	ld.global.b16 	%rs1, [%rd1];
	ld.global.b16 	%rs2, [%rd1+2];
	ld.global.b16 	%rs3, [%rd1+4];
	fma.rn.f16 	%rs4, %rs1, %rs2, %rs3;
	st.global.b16 	[%rd1+6], %rs4;
	ret;
}
)";

TEST(PtxSim, HalfFmaRoundsOnce) {
  auto module = Module::parse(kHalfFma);
  ASSERT_TRUE(module.ok()) << module.status();
  Memory memory;
  auto *data = static_cast<uint16_t *>(memory.allocate(8));
  data[0] = 0x9001; // -(1 + 2^-10) * 2^-11
  data[1] = 0x3bfe; // 1 - 2^-10
  data[2] = 0x3c01; // 1 + 2^-10
  void *params[] = {&data};
  ASSERT_TRUE(launch(*(*module)->kernel("half_fma"), {1, 1, 1}, {1, 1, 1},
                     params, memory)
                  .ok());
  EXPECT_EQ(data[3], 0x3c01);
}

// cvt.rn.f16.f32 at the ends of the range: below half the smallest
// subnormal to (signed) zero, the smallest subnormal, past the largest
// finite value to infinity.
TEST(PtxSim, HalfConversionRange) {
  std::string ptx = kBf16;
  ptx.replace(ptx.find("cvt.rn.bf16.f32"), 15, "cvt.rn.f16.f32");
  ptx.replace(ptx.find("cvt.f32.bf16"), 12, "cvt.f32.f16");
  auto module = Module::parse(ptx);
  ASSERT_TRUE(module.ok()) << module.status();
  Memory memory;
  auto *in = static_cast<float *>(memory.allocate(4 * 4));
  auto *out = static_cast<float *>(memory.allocate(4 * 4));
  in[0] = -1e-10f;
  in[1] = std::ldexp(1.0f, -24);
  in[2] = 70000.0f;
  in[3] = std::ldexp(1.0f, -25) * 1.5f; // rounds up to 2^-24
  void *params[] = {&in, &out};
  ASSERT_TRUE(
      launch(*(*module)->kernel("round"), {1, 1, 1}, {4, 1, 1}, params, memory)
          .ok());
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_TRUE(std::signbit(out[0]));
  EXPECT_EQ(out[1], std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(out[2]));
  EXPECT_EQ(out[3], std::ldexp(1.0f, -24));
}

TEST(PtxSim, UnknownInstructionsAreRejectedByName) {
  std::string ptx = kBf16;
  ptx.replace(ptx.find("cvt.f32.bf16"), 12, "wgmma.fence.sync.aligned");
  auto module = Module::parse(ptx);
  ASSERT_FALSE(module.ok());
  EXPECT_NE(module.status().message().find("unsupported instruction wgmma"),
            std::string::npos)
      << module.status();
}

TEST(PtxSim, ReadingUninitializedSharedMemoryGivesNaN) {
  // Shared memory starts as 0xff bytes: the f32 NaN pattern.
  std::string ptx = kReverseSum;
  ptx.erase(ptx.find("\tst.shared.b32"),
            std::string("\tst.shared.b32 \t[%rd6], %r2;").size());
  auto module = Module::parse(ptx);
  ASSERT_TRUE(module.ok()) << module.status();
  Memory memory;
  float *in = static_cast<float *>(memory.allocate(64 * 4));
  float *out = static_cast<float *>(memory.allocate(64 * 4));
  std::memset(in, 0, 64 * 4);
  void *params[] = {&in, &out};
  ASSERT_TRUE(launch(*(*module)->kernel("reverse_sum"), {1, 1, 1}, {64, 1, 1},
                     params, memory)
                  .ok());
  EXPECT_TRUE(std::isnan(out[0]));
}

} // namespace
} // namespace synth::ptxsim
