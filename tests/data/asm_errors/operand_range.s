	addi r3, r4, 40000
	li r5, -32769
	andi. r3, r4, -1
