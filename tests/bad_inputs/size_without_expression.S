/* expect-error: line 4: expected '.size SYMBOL, EXPRESSION' */
.globl f
f: ret
.size f
