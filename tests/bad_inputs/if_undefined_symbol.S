/* expect-error: line 2: undefined symbol 'NOT_DEFINED' */
.if NOT_DEFINED > 1
.endif
