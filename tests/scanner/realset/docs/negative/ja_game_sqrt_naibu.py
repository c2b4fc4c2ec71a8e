                bonus += math.floor(math.sqrt(self.level) + c) / 100
            if self.data.isAswPlane:
                # 対潜哨戒機
                _bonus = math.floor(math.sqrt(self.level) + c) / 128

        # 補正値 = int(√内部熟練度  + C) / 100
        return 1 + _bonus

    @staticmethod
    def getContactRates(
        items: Sequence[Item],
    ) -> tuple[ContactRate, ContactRate, ContactRate]:
        """装備配列より触接情報