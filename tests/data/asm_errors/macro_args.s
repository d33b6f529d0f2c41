	.macro two a, b=2
	.long \a, \b
	.endm
	.macro bad a:bogus
	.endm
	.macro var a:vararg, b
	.endm
	.macro dup a, a
	.endm
	.macro comma a,
	.endm
	.macro two x
	.endm
	two 1, 2, 3
	two c=1
	two b=1, 5
	.macro
	.endm
	.purgem nosuch
	.exitm
	.endm
