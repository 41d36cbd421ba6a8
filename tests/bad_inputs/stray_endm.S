/* expect-error: line 2: '.endm' without a matching '.macro' */
.endm
