	addi r3, r4
	cmpwi r3
	blr r3
