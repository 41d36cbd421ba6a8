/*
 * tdxproof native runner: runs one assembled function (or a batch of
 * single-instruction forms) on many entry states in one process, on the
 * real CPU, and reports what it did.  model/native.py builds and drives it.
 *
 * Decisions:
 *
 * - The stack and the data (argument structs, scratch memory) live at fixed,
 *   distinctive addresses (TDXPROOF_STACK_BASE, TDXPROOF_DATA_BASE, mapped
 *   with MAP_FIXED_NOREPLACE); the code is linked at a fixed text-segment
 *   address.  Random register values therefore never alias them by chance,
 *   and every run sees the same addresses.
 * - Every exit from the function under test goes through a signal: the
 *   caller's return address points at a ud2 landing pad, never-returning
 *   symbols are ud2 stubs, the builder puts a ud2 fall-through landing after
 *   each function and at each code label outside every function (table
 *   tdxproof_landings), SEAMCALL/TDCALL raise #UD (SIGILL), sti/cli raise
 *   #GP (SIGSEGV).  The handler runs on an alternate signal stack, so
 *   it reads the exact register file from the signal context (no
 *   instruction of ours runs between the function and the capture), and
 *   ends a case with siglongjmp back to the case loop.
 * - The handler plays the TDX module from the case's script (completion,
 *   VMfailInvalid, fault) and the kernel's exception table (trap number
 *   into RAX, resume at the fixup) given as a table of absolute addresses.
 *   IF cannot change in user mode: sti/cli set and clear a tracked bit.
 * - Tracing (TRACE 1): the case starts with the trap flag set, so the CPU
 *   raises a debug trap (SIGTRAP, TRAP_TRACE) after every instruction; the
 *   handler records the registers and the 8 bytes at RBP (when they lie in
 *   the stack or data region) before each instruction of the code under
 *   test -- from the entry on, none of the harness's own, nothing outside
 *   the text segment (a ret to a stray address) -- and lets it go on.
 *   Where the handler itself hands control back to that code (a TDX
 *   instruction played, sti/cli stepped over, a fixup taken) it records
 *   the state it resumes with, since no trap reports it.  TF is masked out
 *   of every RFLAGS reported.
 *
 * Protocol (one token-separated line each, hex numbers without 0x):
 *   in:  case ENTRY RFLAGS IF STACKFILL DATAFILL RETURNSLOT LIMIT_US TRACE
 *        regs R0..R15              (encoding order rax rcx rdx rbx rsp ...)
 *        mem ADDR HEXBYTES         (0 or more)
 *        observe ADDR LEN          (0 or more)
 *        complete STATUS MASK CLEAR SET V...   (one value per MASK bit)
 *        vmfail CLEAR SET
 *        fault TRAP
 *        run
 *   out: end KIND DETAIL            (KIND returned|panic|fallthrough|oops|crash;
 *                                    panic and fallthrough: the stub's or landing's index)
 *        state R0..R15 RFLAGS IF RIP
 *        event KIND RIP OUTCOME R0..R15 RFLAGS IF   (one per TDX instruction)
 *        step RIP R0..R15 OK AT_RBP (tracing: one per instruction; OK 1 when
 *                                    the 8 bytes AT_RBP at RBP were readable)
 *        mem ADDR HEXBYTES          (one per observe line)
 *        done
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef TDXPROOF_STACK_BASE
#error "TDXPROOF_STACK_BASE must be defined by the builder"
#endif

#define NREGS 16
#define MAX_SCRIPT 64
#define MAX_EVENTS 64
#define MAX_OBSERVE 64
#define MAX_STEPS 20000
#define FLAGS_SETTABLE 0xcd5ULL /* CF PF AF ZF SF DF OF */
#define FLAG_TF 0x100ULL

/* Tables emitted next to the code under test (model/native.py). */
extern const uint64_t tdxproof_entries[];     /* count, address...        */
extern const uint64_t tdxproof_extable[];     /* count, (from, to, kind)... */
extern const uint64_t tdxproof_use_ex_table[]; /* 1: read __ex_table instead */
extern const char ex_handler_default[], ex_handler_fault[];
/* The program's own exception table, as the kernel lays it out. */
extern const int32_t __start___ex_table[] __attribute__((weak));
extern const int32_t __stop___ex_table[] __attribute__((weak));
extern const uint64_t tdxproof_panic_stubs[]; /* count, address...        */
extern const uint64_t tdxproof_landings[];    /* count, address...        */
extern const char __executable_start[], etext[];

/* Defined in the assembly block below. */
extern void tdxproof_enter(const uint64_t *entry) __attribute__((noreturn));
extern const char tdxproof_return_landing[], tdxproof_taken_landing[], __x86_return_thunk[];

__asm__(
    ".text\n"
    /* rdi -> 16 registers, RFLAGS, target: load them all and jump. */
    ".globl tdxproof_enter\n"
    "tdxproof_enter:\n"
    "  pushq 128(%rdi)\n"
    "  popfq\n"
    "  movq 136(%rdi), %rax\n"
    "  movq %rax, tdxproof_target(%rip)\n"
    "  movq 0(%rdi), %rax\n"
    "  movq 8(%rdi), %rcx\n"
    "  movq 16(%rdi), %rdx\n"
    "  movq 24(%rdi), %rbx\n"
    "  movq 32(%rdi), %rsp\n"
    "  movq 40(%rdi), %rbp\n"
    "  movq 48(%rdi), %rsi\n"
    "  movq 64(%rdi), %r8\n"
    "  movq 72(%rdi), %r9\n"
    "  movq 80(%rdi), %r10\n"
    "  movq 88(%rdi), %r11\n"
    "  movq 96(%rdi), %r12\n"
    "  movq 104(%rdi), %r13\n"
    "  movq 112(%rdi), %r14\n"
    "  movq 120(%rdi), %r15\n"
    "  movq 56(%rdi), %rdi\n"
    "  jmp *tdxproof_target(%rip)\n"
    /* Where the caller's return address points. */
    ".globl tdxproof_return_landing\n"
    "tdxproof_return_landing: ud2\n"
    /* Where a single-instruction form lands when its branch is taken. */
    ".globl tdxproof_taken_landing\n"
    "tdxproof_taken_landing: ud2\n"
    /* CONFIG_RETHUNK's `jmp __x86_return_thunk` returns through here. */
    ".weak __x86_return_thunk\n"
    "__x86_return_thunk: ret\n"
    ".bss\n"
    ".balign 8\n"
    "tdxproof_target: .quad 0\n"
    ".text\n");

static const int greg_of[NREGS] = {
    REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
    REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
};

enum outcome { COMPLETE, VMFAIL, FAULT };
static const char *const outcome_name[] = {"completion", "vmfailinvalid", "fault"};

struct behaviour {
    enum outcome outcome;
    uint64_t status, mask, clear, set, trap;
    uint64_t values[NREGS];
};

struct event {
    const char *kind, *outcome;
    uint64_t rip, regs[NREGS], rflags, if_flag;
};

struct observation { uint64_t address, length; };

struct step { uint64_t rip, regs[NREGS], at_rbp, readable; };

/* The case being run; the signal handler reads and writes these. */
static struct {
    uint64_t entry[NREGS + 2];
    uint64_t if_flag;
    struct behaviour script[MAX_SCRIPT];
    int script_len, script_pos;
    struct event events[MAX_EVENTS];
    int nevents;
    struct observation observe[MAX_OBSERVE];
    int nobserve;
    uint64_t trace;     /* single-step the case */
    int stepping;       /* the entry has been reached: record steps */
    struct step *steps;
    int nsteps;
    volatile sig_atomic_t running;
    /* The outcome. */
    const char *end;
    char detail[96];
    uint64_t regs[NREGS], rflags, rip;
} cur;

static sigjmp_buf case_done;

static void die(const char *message, const char *arg)
{
    fprintf(stderr, "tdxproof-runner: %s%s%s\n", message, arg ? ": " : "", arg ? arg : "");
    exit(2);
}

static int in_text(uint64_t address, uint64_t length)
{
    return address >= (uint64_t)__executable_start && address + length <= (uint64_t)etext;
}

static void finish(const char *end, ucontext_t *uc) __attribute__((noreturn));
static void finish(const char *end, ucontext_t *uc)
{
    greg_t *g = uc->uc_mcontext.gregs;
    for (int i = 0; i < NREGS; i++)
        cur.regs[i] = (uint64_t)g[greg_of[i]];
    cur.rflags = (uint64_t)g[REG_EFL] & ~FLAG_TF;
    cur.rip = (uint64_t)g[REG_RIP];
    cur.end = end;
    cur.running = 0;
    siglongjmp(case_done, 1);
}

static void record_event(const char *kind, const char *outcome, ucontext_t *uc)
{
    greg_t *g = uc->uc_mcontext.gregs;
    if (cur.nevents == MAX_EVENTS) {
        snprintf(cur.detail, sizeof cur.detail, "too-many-tdx-events");
        finish("crash", uc);
    }
    struct event *e = &cur.events[cur.nevents++];
    e->kind = kind;
    e->outcome = outcome;
    e->rip = (uint64_t)g[REG_RIP];
    for (int i = 0; i < NREGS; i++)
        e->regs[i] = (uint64_t)g[greg_of[i]];
    e->rflags = (uint64_t)g[REG_EFL] & ~FLAG_TF;
    e->if_flag = cur.if_flag;
}

static int in_regions(uint64_t address, uint64_t length);

/* Whether RIP is one of the harness's own exits (landings, stubs, the
 * return thunk): not code under test. */
static int harness_address(uint64_t rip)
{
    if (rip == (uint64_t)tdxproof_return_landing || rip == (uint64_t)tdxproof_taken_landing ||
        rip == (uint64_t)__x86_return_thunk)
        return 1;
    for (uint64_t i = 0; i < tdxproof_panic_stubs[0]; i++)
        if (rip == tdxproof_panic_stubs[1 + i])
            return 1;
    for (uint64_t i = 0; i < tdxproof_landings[0]; i++)
        if (rip == tdxproof_landings[1 + i])
            return 1;
    return 0;
}

/* Tracing: the state before the instruction at the context's RIP. */
static void record_step(ucontext_t *uc)
{
    greg_t *g = uc->uc_mcontext.gregs;
    uint64_t rip = (uint64_t)g[REG_RIP];
    if (!cur.trace)
        return;
    if (!cur.stepping) {
        if (rip != cur.entry[NREGS + 1])
            return;
        cur.stepping = 1;
    }
    if (harness_address(rip) || !in_text(rip, 1))     /* not code: a ret to a stray address */
        return;
    if (cur.nsteps == MAX_STEPS) {
        snprintf(cur.detail, sizeof cur.detail, "too-many-steps");
        finish("crash", uc);
    }
    struct step *s = &cur.steps[cur.nsteps++];
    s->rip = rip;
    for (int i = 0; i < NREGS; i++)
        s->regs[i] = (uint64_t)g[greg_of[i]];
    uint64_t rbp = (uint64_t)g[REG_RBP];
    s->readable = in_regions(rbp, 8);
    s->at_rbp = s->readable ? *(const uint64_t *)rbp : 0;
}

/* One exception-table entry: a fault at FROM resumes at TO; KIND 2 = fault
 * (trap number into RAX), 1 = default, anything else is unsupported. */
struct fixup { uint64_t from, to, kind; };

/* Entry I of the program's __ex_table: `.long from - .`, `.long to - .`,
 * `.long type` (or the older `.long handler - .`). */
static struct fixup section_entry(const int32_t *e)
{
    struct fixup f = {(uint64_t)&e[0] + (int64_t)e[0], (uint64_t)&e[1] + (int64_t)e[1], 0};
    uint64_t handler = (uint64_t)&e[2] + (int64_t)e[2];
    if (handler == (uint64_t)ex_handler_fault || e[2] == 2)
        f.kind = 2;
    else if (handler == (uint64_t)ex_handler_default || e[2] == 1)
        f.kind = 1;
    else
        f.kind = (uint64_t)(uint32_t)e[2] << 8 | 0xff;
    return f;
}

static int find_fixup(uint64_t rip, struct fixup *found)
{
    if (tdxproof_use_ex_table[0]) {
        if (!__start___ex_table)
            return 0;
        for (const int32_t *e = __start___ex_table; e + 3 <= __stop___ex_table; e += 3) {
            *found = section_entry(e);
            if (found->from == rip)
                return 1;
        }
        return 0;
    }
    for (uint64_t i = 0; i < tdxproof_extable[0]; i++) {
        const uint64_t *entry = &tdxproof_extable[1 + 3 * i];
        if (entry[0] == rip) {
            *found = (struct fixup){entry[0], entry[1], entry[2]};
            return 1;
        }
    }
    return 0;
}

/* A fault at RIP with trap number TRAP: the exception table decides. */
static void fault(uint64_t trap, ucontext_t *uc)
{
    greg_t *g = uc->uc_mcontext.gregs;
    uint64_t rip = (uint64_t)g[REG_RIP];
    struct fixup f;
    if (find_fixup(rip, &f) && (f.kind == 1 || f.kind == 2)) {
        if (f.kind == 2)
            g[REG_RAX] = (greg_t)trap;
        g[REG_RIP] = (greg_t)f.to;
        record_step(uc);
        return;
    }
    if (find_fixup(rip, &f))
        snprintf(cur.detail, sizeof cur.detail, "trap-%llu-at-%llx-unsupported-extable-type-%llx",
                 (unsigned long long)trap, (unsigned long long)rip, (unsigned long long)(f.kind >> 8));
    else
        snprintf(cur.detail, sizeof cur.detail, "trap-%llu-at-%llx", (unsigned long long)trap,
                 (unsigned long long)rip);
    finish("oops", uc);
}

static void apply_flags(ucontext_t *uc, uint64_t clear, uint64_t set)
{
    greg_t *g = uc->uc_mcontext.gregs;
    g[REG_EFL] = (greg_t)(((uint64_t)g[REG_EFL] & ~clear) | set);
}

/* SEAMCALL/TDCALL at RIP: play the next scripted module behaviour. */
static void tdx_instruction(const char *kind, ucontext_t *uc)
{
    greg_t *g = uc->uc_mcontext.gregs;
    if (cur.script_pos == cur.script_len) {
        record_event(kind, "unscripted", uc);
        snprintf(cur.detail, sizeof cur.detail, "unscripted-%s", kind);
        finish("crash", uc);
    }
    const struct behaviour *b = &cur.script[cur.script_pos++];
    record_event(kind, b->outcome == FAULT ? (b->trap == 6 ? "fault-ud" : b->trap == 13 ? "fault-gp" : "fault")
                                           : outcome_name[b->outcome], uc);
    switch (b->outcome) {
    case COMPLETE:
        g[REG_RAX] = (greg_t)b->status;
        for (int i = 0; i < NREGS; i++)
            if (b->mask >> i & 1)
                g[greg_of[i]] = (greg_t)b->values[i];
        apply_flags(uc, b->clear, b->set);
        g[REG_RIP] += 4;
        record_step(uc);
        break;
    case VMFAIL:
        apply_flags(uc, b->clear, b->set);
        g[REG_RIP] += 4;
        record_step(uc);
        break;
    case FAULT:
        fault(b->trap, uc);
        break;
    }
}

static void on_signal(int sig, siginfo_t *info, void *context)
{
    ucontext_t *uc = context;
    greg_t *g = uc->uc_mcontext.gregs;
    uint64_t rip = (uint64_t)g[REG_RIP];

    if (!cur.running) {
        if (sig == SIGALRM)
            return;
        static const char message[] = "tdxproof-runner: signal outside a case\n";
        (void)!write(2, message, sizeof message - 1);
        _exit(3);
    }
    if (sig == SIGALRM) {
        snprintf(cur.detail, sizeof cur.detail, "timeout");
        finish("crash", uc);
    }
    if (sig == SIGILL) {
        if (rip == (uint64_t)tdxproof_return_landing) {
            snprintf(cur.detail, sizeof cur.detail, "return");
            finish("returned", uc);
        }
        if (rip == (uint64_t)tdxproof_taken_landing) {
            snprintf(cur.detail, sizeof cur.detail, "taken");
            finish("returned", uc);
        }
        for (uint64_t i = 0; i < tdxproof_panic_stubs[0]; i++)
            if (rip == tdxproof_panic_stubs[1 + i]) {
                snprintf(cur.detail, sizeof cur.detail, "%llu", (unsigned long long)i);
                finish("panic", uc);
            }
        for (uint64_t i = 0; i < tdxproof_landings[0]; i++)
            if (rip == tdxproof_landings[1 + i]) {
                snprintf(cur.detail, sizeof cur.detail, "%llu", (unsigned long long)i);
                finish("fallthrough", uc);
            }
        if (in_text(rip, 4)) {
            const unsigned char *code = (const unsigned char *)rip;
            if (code[0] == 0x66 && code[1] == 0x0f && code[2] == 0x01 && code[3] == 0xcc) {
                tdx_instruction("tdcall", uc);
                return;
            }
            if (code[0] == 0x66 && code[1] == 0x0f && code[2] == 0x01 && code[3] == 0xcf) {
                tdx_instruction("seamcall", uc);
                return;
            }
        }
        fault(6, uc);
        return;
    }
    if (sig == SIGSEGV && info->si_code == SI_KERNEL) {
        if (in_text(rip, 1) && *(const unsigned char *)rip == 0xfb) { /* sti */
            cur.if_flag = 1;
            g[REG_RIP] += 1;
            record_step(uc);
            return;
        }
        if (in_text(rip, 1) && *(const unsigned char *)rip == 0xfa) { /* cli */
            cur.if_flag = 0;
            g[REG_RIP] += 1;
            record_step(uc);
            return;
        }
        fault(13, uc);
        return;
    }
    if (sig == SIGTRAP && info->si_code == TRAP_TRACE && cur.trace) { /* a single step */
        record_step(uc);
        return;
    }
    if (sig == SIGTRAP) { /* int3: RIP is past it */
        snprintf(cur.detail, sizeof cur.detail, "trap-3-at-%llx", (unsigned long long)(rip - 1));
        finish("oops", uc);
    }
    snprintf(cur.detail, sizeof cur.detail, "signal-%d-code-%d-addr-%llx-rip-%llx", sig,
             info->si_code, (unsigned long long)(uintptr_t)info->si_addr, (unsigned long long)rip);
    finish("crash", uc);
}

static void install_handlers(void)
{
    static const int signals[] = {SIGILL, SIGSEGV, SIGBUS, SIGFPE, SIGTRAP, SIGALRM};
    stack_t alt = {.ss_sp = malloc(1 << 16), .ss_size = 1 << 16, .ss_flags = 0};
    if (!alt.ss_sp || sigaltstack(&alt, NULL))
        die("sigaltstack failed", strerror(errno));
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_signal;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
        sigaddset(&action.sa_mask, signals[i]);
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
        if (sigaction(signals[i], &action, NULL))
            die("sigaction failed", strerror(errno));
}

static void map_region(uint64_t base, uint64_t size)
{
    void *p = mmap((void *)base, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)base)
        die("cannot map a fixed region", strerror(errno));
}

static int in_region(uint64_t address, uint64_t length, uint64_t base, uint64_t size)
{
    return address >= base && length <= size && address - base <= size - length;
}

static int in_regions(uint64_t address, uint64_t length)
{
    return in_region(address, length, TDXPROOF_STACK_BASE, TDXPROOF_STACK_SIZE) ||
           in_region(address, length, TDXPROOF_DATA_BASE, TDXPROOF_DATA_SIZE);
}

static uint64_t hex(const char *token)
{
    char *end;
    if (!token)
        die("missing number", NULL);
    errno = 0;
    uint64_t value = strtoull(token, &end, 16);
    if (*end || errno)
        die("bad hex number", token);
    return value;
}

static const char *next_token(void) { return strtok(NULL, " \t\n"); }

static void write_bytes(uint64_t address, const char *digits)
{
    size_t n = strlen(digits);
    if (n % 2 || !in_regions(address, n / 2))
        die("memory outside the mapped regions or odd hex", digits);
    unsigned char *p = (unsigned char *)address;
    for (size_t i = 0; i < n / 2; i++) {
        char byte[3] = {digits[2 * i], digits[2 * i + 1], 0};
        p[i] = (unsigned char)hex(byte);
    }
}

static void parse_behaviour(const char *word)
{
    if (cur.script_len == MAX_SCRIPT)
        die("script too long", NULL);
    struct behaviour *b = &cur.script[cur.script_len++];
    memset(b, 0, sizeof *b);
    if (!strcmp(word, "complete")) {
        b->outcome = COMPLETE;
        b->status = hex(next_token());
        b->mask = hex(next_token());
        b->clear = hex(next_token());
        b->set = hex(next_token());
        for (int i = 0; i < NREGS; i++)
            if (b->mask >> i & 1)
                b->values[i] = hex(next_token());
    } else if (!strcmp(word, "vmfail")) {
        b->outcome = VMFAIL;
        b->clear = hex(next_token());
        b->set = hex(next_token());
    } else {
        b->outcome = FAULT;
        b->trap = hex(next_token());
    }
    if ((b->clear | b->set) & ~FLAGS_SETTABLE)
        die("module may only set arithmetic flags and DF", word);
}

static void print_regs(const uint64_t *regs)
{
    for (int i = 0; i < NREGS; i++)
        printf(" %llx", (unsigned long long)regs[i]);
}

static void run_case(uint64_t entry_index, uint64_t return_slot, uint64_t limit_us)
{
    if (entry_index >= tdxproof_entries[0])
        die("no such entry", NULL);
    cur.entry[NREGS + 1] = tdxproof_entries[1 + entry_index];
    uint64_t rsp = cur.entry[4];
    if (return_slot) {
        if (!in_region(rsp, 8, TDXPROOF_STACK_BASE, TDXPROOF_STACK_SIZE))
            die("entry RSP is not in the stack region", NULL);
        *(uint64_t *)rsp = (uint64_t)tdxproof_return_landing;
    }
    cur.nevents = 0;
    cur.script_pos = 0;
    cur.detail[0] = 0;
    cur.nsteps = 0;
    cur.stepping = 0;
    struct itimerval timer = {.it_value = {.tv_sec = (time_t)(limit_us / 1000000),
                                           .tv_usec = (suseconds_t)(limit_us % 1000000)}};
    if (sigsetjmp(case_done, 1) == 0) {
        setitimer(ITIMER_REAL, &timer, NULL);
        cur.running = 1;
        tdxproof_enter(cur.entry);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);

    printf("end %s %s\nstate", cur.end, cur.detail[0] ? cur.detail : "-");
    print_regs(cur.regs);
    printf(" %llx %llx %llx\n", (unsigned long long)cur.rflags, (unsigned long long)cur.if_flag,
           (unsigned long long)cur.rip);
    for (int i = 0; i < cur.nevents; i++) {
        const struct event *e = &cur.events[i];
        printf("event %s %llx %s", e->kind, (unsigned long long)e->rip, e->outcome);
        print_regs(e->regs);
        printf(" %llx %llx\n", (unsigned long long)e->rflags, (unsigned long long)e->if_flag);
    }
    for (int i = 0; i < cur.nsteps; i++) {
        const struct step *s = &cur.steps[i];
        printf("step %llx", (unsigned long long)s->rip);
        print_regs(s->regs);
        printf(" %llx %llx\n", (unsigned long long)s->readable, (unsigned long long)s->at_rbp);
    }
    for (int i = 0; i < cur.nobserve; i++) {
        const unsigned char *p = (const unsigned char *)cur.observe[i].address;
        printf("mem %llx ", (unsigned long long)cur.observe[i].address);
        for (uint64_t j = 0; j < cur.observe[i].length; j++)
            printf("%02x", p[j]);
        printf("\n");
    }
    printf("done\n");
}

int main(void)
{
    map_region(TDXPROOF_STACK_BASE, TDXPROOF_STACK_SIZE);
    map_region(TDXPROOF_DATA_BASE, TDXPROOF_DATA_SIZE);
    cur.steps = malloc(MAX_STEPS * sizeof *cur.steps);
    if (!cur.steps)
        die("out of memory", NULL);
    install_handlers();

    char *line = NULL;
    size_t capacity = 0;
    uint64_t entry_index = 0, return_slot = 1, limit_us = 2000000;
    while (getline(&line, &capacity, stdin) > 0) {
        const char *word = strtok(line, " \t\n");
        if (!word)
            continue;
        if (!strcmp(word, "case")) {
            entry_index = hex(next_token());
            cur.entry[NREGS] = (hex(next_token()) & FLAGS_SETTABLE) | 2;
            cur.if_flag = hex(next_token()) & 1;
            memset((void *)TDXPROOF_STACK_BASE, (int)hex(next_token()), TDXPROOF_STACK_SIZE);
            memset((void *)TDXPROOF_DATA_BASE, (int)hex(next_token()), TDXPROOF_DATA_SIZE);
            return_slot = hex(next_token());
            limit_us = hex(next_token());
            if (!limit_us)
                die("a case needs a time limit", NULL);
            cur.trace = hex(next_token()) & 1;
            if (cur.trace)
                cur.entry[NREGS] |= FLAG_TF;
            cur.script_len = 0;
            cur.nobserve = 0;
        } else if (!strcmp(word, "regs")) {
            for (int i = 0; i < NREGS; i++)
                cur.entry[i] = hex(next_token());
        } else if (!strcmp(word, "mem")) {
            uint64_t address = hex(next_token());
            const char *digits = next_token();
            write_bytes(address, digits ? digits : "");
        } else if (!strcmp(word, "observe")) {
            if (cur.nobserve == MAX_OBSERVE)
                die("too many observed ranges", NULL);
            struct observation *o = &cur.observe[cur.nobserve++];
            o->address = hex(next_token());
            o->length = hex(next_token());
            if (!in_regions(o->address, o->length))
                die("observed range outside the mapped regions", NULL);
        } else if (!strcmp(word, "complete") || !strcmp(word, "vmfail") || !strcmp(word, "fault")) {
            parse_behaviour(word);
        } else if (!strcmp(word, "run")) {
            run_case(entry_index, return_slot, limit_us);
        } else {
            die("unknown command", word);
        }
    }
    free(line);
    return fflush(stdout) ? 2 : 0;
}
