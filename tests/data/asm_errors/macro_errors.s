	.macro store reg, off:req
	stw \reg, \off(r1)
	.endm
	store r3
	store r3, 4, 5
	store r3, 70000
