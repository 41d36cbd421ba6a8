/* expect-error: line 2: undefined symbol 'TDX_MODULE_rcx' */
	movq TDX_MODULE_rcx(%rsi), %rcx
