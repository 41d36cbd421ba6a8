/* expect-error: line 3: macro nesting (macro 'LOOP' expands itself) exceeds the limit of 100 levels (raise it with --limit macro-depth=N) */
.macro LOOP n
	LOOP "\n+1"
.endm
	LOOP 0
